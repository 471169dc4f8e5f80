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
use serde_json::{Value, json};

use super::{Chain, Rule, Ruleset, UDP_TIMEOUT};

fn table_object(table: &str) -> NfListObject<'static> {
    NfListObject::Table(schema::Table { family: NfFamily::IP, name: table.to_owned().into(), handle: None })
}

fn chain_object(table: &str, name: &str, chain: &Chain) -> NfListObject<'static> {
    NfListObject::Chain(schema::Chain {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        name: name.to_owned().into(),
        _type: chain.hook.map(|h| h.kind),
        hook: chain.hook.map(|h| h.hook),
        prio: chain.hook.map(|h| h.priority),
        policy: chain.hook.map(|_| nftables::types::NfChainPolicy::Accept),
        ..Default::default()
    })
}

fn bare_chain(table: &str, name: &str) -> schema::Chain<'static> {
    schema::Chain { family: NfFamily::IP, table: table.to_owned().into(), name: name.to_owned().into(), ..Default::default() }
}

fn set_object(table: &str, name: &str, secs: u32) -> schema::Set<'static> {
    schema::Set {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        name: name.to_owned().into(),
        set_type: SetTypeValue::Single(SetType::Ipv4Addr),
        // `update` from the packet path needs no `dynamic` flag here, and
        // nft 1.0.6 (Debian 12) does not take it in JSON.
        flags: Some([SetFlag::Timeout].into_iter().collect()),
        timeout: Some(secs),
        ..Default::default()
    }
}

fn rule_object(table: &str, chain: &str, rule: &Rule) -> NfListObject<'static> {
    NfListObject::Rule(schema::Rule {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(rule.statements.clone()),
        comment: rule.comment.clone().map(Cow::Owned),
        ..Default::default()
    })
}

/// The commands that take the table from `installed` to `desired`, in an
/// order the kernel accepts: new chains and sets first (rules refer to
/// them), then changed chains are flushed and refilled, then what nothing
/// refers to any more is deleted. Empty when nothing changed.
fn commands(table: &str, installed: &Ruleset, desired: &Ruleset) -> Vec<NfObject<'static>> {
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
        if old.is_some() {
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

fn document(objects: Vec<Value>) -> Value {
    json!({ "nftables": objects })
}

fn values(objects: Vec<NfObject<'static>>) -> Vec<Value> {
    objects.into_iter().map(|o| serde_json::to_value(o).expect("nftables objects serialize")).collect()
}

/// The chains and sets `desired` adds, as a batch of their own, and what
/// the table holds once it is applied (the new chains empty).
///
/// Why apart: rules that refer to a chain or set created in the same batch
/// refer to it by transaction id, and the kernel finds an id by walking the
/// batch, so one batch of n new chains costs O(n²) (a first apply of 3000
/// ports took 8.5 s of kernel time, 5000 took 31 s). Created first, they
/// are found by name. Empty chains nothing jumps to and unused sets change
/// no packet's fate, so the apply stays atomic where it matters: the
/// second batch.
pub(crate) fn additions(table: &str, installed: &Ruleset, desired: &Ruleset) -> (Option<Value>, Ruleset) {
    let mut staged = installed.clone();
    let mut objects = Vec::new();
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) {
            objects.push(NfObject::CmdObject(NfCmd::Add(chain_object(table, name, chain))));
            staged.chains.insert(name.clone(), Chain { hook: chain.hook, rules: Vec::new() });
        }
    }
    for (name, &secs) in &desired.sets {
        if installed.sets.get(name) != Some(&secs) {
            objects.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(Box::new(set_object(table, name, secs))))));
            staged.sets.insert(name.clone(), secs);
        }
    }
    ((!objects.is_empty()).then(|| document(values(objects))), staged)
}

/// The batch that brings `installed` to `desired`, or `None` if they agree.
pub(crate) fn transaction(table: &str, installed: &Ruleset, desired: &Ruleset) -> Option<Value> {
    let objects = commands(table, installed, desired);
    (!objects.is_empty()).then(|| document(values(objects)))
}

/// The batch that (re)creates the table from nothing: whatever a previous
/// run left is deleted in the same transaction (add, delete, add is the
/// idiom that works whether or not the table exists).
pub(crate) fn start(table: &str, desired: &Ruleset) -> Value {
    let mut objects = values(vec![
        NfObject::CmdObject(NfCmd::Add(table_object(table))),
        NfObject::CmdObject(NfCmd::Delete(table_object(table))),
        NfObject::CmdObject(NfCmd::Add(table_object(table))),
    ]);
    objects.extend(values(commands(table, &Ruleset::default(), desired)));
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
pub(crate) fn shutdown(table: &str) -> Value {
    document(values(vec![NfObject::CmdObject(NfCmd::Delete(table_object(table)))]))
}
