//! From "what the table holds" and "what it must hold" to one `nft -j`
//! batch. The kernel applies a batch atomically: a failed batch changes
//! nothing, so the proxy's record of what is installed stays true.
//!
//! Only what changed is rewritten: unchanged chains are not touched, and
//! affinity sets are created once and kept, so an apply that adds one
//! service does not make every other service's clients forget their
//! backend. Existing connections never depend on rules (conntrack holds
//! their NAT), so deleting a chain does not cut them.

use std::borrow::Cow;

use nftables::schema::{self, NfCmd, NfListObject, NfObject, SetFlag, SetType, SetTypeValue};
use nftables::types::NfFamily;

use super::{Chain, Rule, Ruleset, UDP_TIMEOUT};

/// One `nft -j` document, serialized, and how many commands it holds.
///
/// Serialized straight from the objects, which borrow the rule set: a
/// first apply of 5000 ports is 17 MB of JSON, and going through
/// `serde_json::Value` cost more than `nft` spent reading it.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) json: Vec<u8>,
    pub(crate) commands: usize,
}

fn table_object(table: &str) -> NfListObject<'_> {
    NfListObject::Table(schema::Table { family: NfFamily::IP, name: table.into(), handle: None })
}

fn chain_object<'a>(table: &'a str, name: &'a str, chain: &Chain) -> NfListObject<'a> {
    NfListObject::Chain(schema::Chain {
        family: NfFamily::IP,
        table: table.into(),
        name: name.into(),
        _type: chain.hook.map(|h| h.kind),
        hook: chain.hook.map(|h| h.hook),
        prio: chain.hook.map(|h| h.priority),
        policy: chain.hook.map(|_| nftables::types::NfChainPolicy::Accept),
        ..Default::default()
    })
}

fn bare_chain<'a>(table: &'a str, name: &'a str) -> schema::Chain<'a> {
    schema::Chain { family: NfFamily::IP, table: table.into(), name: name.into(), ..Default::default() }
}

fn set_object<'a>(table: &'a str, name: &'a str, secs: u32) -> schema::Set<'a> {
    schema::Set {
        family: NfFamily::IP,
        table: table.into(),
        name: name.into(),
        set_type: SetTypeValue::Single(SetType::Ipv4Addr),
        // `update` from the packet path needs no `dynamic` flag here, and
        // nft 1.0.6 (Debian 12) does not take it in JSON.
        flags: Some([SetFlag::Timeout].into_iter().collect()),
        timeout: Some(secs),
        ..Default::default()
    }
}

fn rule_object<'a>(table: &'a str, chain: &'a str, rule: &'a Rule) -> NfListObject<'a> {
    NfListObject::Rule(schema::Rule {
        family: NfFamily::IP,
        table: table.into(),
        chain: chain.into(),
        expr: Cow::Borrowed(&rule.statements),
        comment: rule.comment.as_deref().map(Cow::Borrowed),
        ..Default::default()
    })
}

/// The commands that take the table from `installed` to `desired`, in an
/// order the kernel accepts: new chains and sets first (rules refer to
/// them), then changed chains are flushed and refilled, then what nothing
/// refers to any more is deleted. Empty when nothing changed.
fn commands<'a>(table: &'a str, installed: &'a Ruleset, desired: &'a Ruleset) -> Vec<NfObject<'a>> {
    let mut out = Vec::new();
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) {
            out.push(NfObject::CmdObject(NfCmd::Add(chain_object(table, name, chain))));
        }
    }
    for (name, &secs) in &desired.sets {
        if installed.sets.get(name) != Some(&secs) {
            out.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(Box::new(set_object(table, name, secs))))));
        }
    }
    for (name, chain) in &desired.chains {
        let old = installed.chains.get(name);
        if old.map(|c| &c.rules) == Some(&chain.rules) {
            continue;
        }
        // A chain made empty just before (`additions`) needs no flush.
        if old.is_some_and(|c| !c.rules.is_empty()) {
            out.push(NfObject::CmdObject(NfCmd::Flush(schema::FlushObject::Chain(bare_chain(table, name)))));
        }
        for rule in &chain.rules {
            out.push(NfObject::CmdObject(NfCmd::Add(rule_object(table, name, rule))));
        }
    }
    // A chain can only be deleted once nothing jumps to it: flush every
    // stale chain first (a service chain's rules refer to its endpoint
    // chains), then delete them.
    let stale: Vec<&String> = installed.chains.keys().filter(|n| !desired.chains.contains_key(*n)).collect();
    for name in &stale {
        out.push(NfObject::CmdObject(NfCmd::Flush(schema::FlushObject::Chain(bare_chain(table, name)))));
    }
    for name in stale {
        out.push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Chain(bare_chain(table, name)))));
    }
    for (name, &secs) in installed.sets.iter().filter(|(n, _)| !desired.sets.contains_key(*n)) {
        out.push(NfObject::CmdObject(NfCmd::Delete(NfListObject::Set(Box::new(set_object(table, name, secs))))));
    }
    out
}

fn document(objects: Vec<NfObject<'_>>) -> Batch {
    let commands = objects.len();
    let json = serde_json::to_vec(&schema::Nftables { objects: Cow::Owned(objects) }).expect("nftables objects serialize");
    Batch { json, commands }
}

/// The chains and sets `desired` adds, as a batch of their own, but for the
/// chains `apart` names (sorted), which [`apart`] makes; once it is
/// applied, [`stage`] records them in what the table holds.
///
/// Why first: chains and sets that rules refer to must exist before the
/// rules; made in a batch of their own, empty chains nothing jumps to and
/// unused sets change no packet's fate, so the apply stays atomic where it
/// matters: the [`transaction`] after.
pub(crate) fn additions(table: &str, installed: &Ruleset, desired: &Ruleset, apart: &[String]) -> Option<Batch> {
    let mut objects = Vec::new();
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) && apart.binary_search(name).is_err() {
            objects.push(NfObject::CmdObject(NfCmd::Add(chain_object(table, name, chain))));
        }
    }
    for (name, &secs) in &desired.sets {
        if installed.sets.get(name) != Some(&secs) {
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(Box::new(set_object(table, name, secs))))));
        }
    }
    (!objects.is_empty()).then(|| document(objects))
}

/// Records in `installed` what the [`additions`] batch for `desired` made
/// (all its new chains, empty, but `apart`'s, and its sets).
pub(crate) fn stage(installed: &mut Ruleset, desired: &Ruleset, apart: &[String]) {
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) && apart.binary_search(name).is_err() {
            installed.chains.insert(name.clone(), Chain { hook: chain.hook, rules: Vec::new() });
        }
    }
    for (name, &secs) in &desired.sets {
        installed.sets.insert(name.clone(), secs);
    }
}

/// `chains` (new in `desired`: see [`additions`]) split in at most `parts`
/// groups for [`apart`], a port's service chain with its endpoint chains
/// (they share the port's hash, see `names`), since one refers to the
/// others.
pub(crate) fn groups(chains: &[String], parts: usize) -> Vec<Vec<String>> {
    let mut by_port: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for name in chains {
        // `svc-HASH-…` and `ep-HASH-…`; anything else stands alone.
        let port = name.split('-').nth(1).filter(|_| name.starts_with("svc-") || name.starts_with("ep-")).unwrap_or(name);
        by_port.entry(port).or_default().push(name.clone());
    }
    let per_part = chains.len().div_ceil(parts.max(1));
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    for (_, names) in by_port {
        if out.last().is_some_and(|part| part.len() >= per_part) {
            out.push(Vec::new());
        }
        out.last_mut().expect("one part at least").extend(names);
    }
    out.retain(|part| !part.is_empty());
    out
}

/// The batch that makes `chains` (one of [`groups`]) and fills them from
/// `desired`. Nothing refers to them until the [`transaction`] that
/// follows, so several such batches may run side by side.
pub(crate) fn apart(table: &str, chains: &[String], desired: &Ruleset) -> Batch {
    let mut objects = Vec::new();
    for name in chains {
        if let Some(chain) = desired.chains.get(name) {
            objects.push(NfObject::CmdObject(NfCmd::Add(chain_object(table, name, chain))));
        }
    }
    for name in chains {
        for rule in desired.chains.get(name).map(|c| c.rules.as_slice()).unwrap_or_default() {
            objects.push(NfObject::CmdObject(NfCmd::Add(rule_object(table, name, rule))));
        }
    }
    document(objects)
}

/// The batch that brings `installed` to `desired`, or `None` if they agree.
pub(crate) fn transaction(table: &str, installed: &Ruleset, desired: &Ruleset) -> Option<Batch> {
    let objects = commands(table, installed, desired);
    (!objects.is_empty()).then(|| document(objects))
}

/// The batch that (re)creates the table from nothing: whatever a previous
/// run left is deleted in the same transaction (add, delete, add is the
/// idiom that works whether or not the table exists).
pub(crate) fn start(table: &str, desired: &Ruleset) -> Batch {
    let empty = Ruleset::default();
    let mut objects = vec![
        NfObject::CmdObject(NfCmd::Add(table_object(table))),
        NfObject::CmdObject(NfCmd::Delete(table_object(table))),
        NfObject::CmdObject(NfCmd::Add(table_object(table))),
    ];
    objects.extend(commands(table, &empty, desired));
    document(objects)
}

/// The `ct timeout` object UDP service flows get, in `nft`'s text syntax:
/// the one thing not sent as JSON. The nftables crate's object has no
/// `policy`, and nft 1.0.6 (Debian 12) ignores the policy of a JSON
/// `ct timeout` (its parser returns before reading it), leaving conntrack's
/// defaults. The table name is checked to be an identifier and the
/// timeout is a number, so nothing else can end up in the command.
pub(crate) fn udp_timeout(table: &str, udp_idle_secs: u32) -> String {
    format!("add ct timeout ip {table} {UDP_TIMEOUT} {{ protocol udp; l3proto ip; policy = {{ unreplied: {udp_idle_secs}, replied: {udp_idle_secs} }}; }}\n")
}

/// The batch that removes the table and everything in it.
pub(crate) fn shutdown(table: &str) -> Batch {
    document(vec![NfObject::CmdObject(NfCmd::Delete(table_object(table)))])
}
