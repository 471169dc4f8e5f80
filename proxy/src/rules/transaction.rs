//! From "what the table holds" and "what it must hold" to one `nft`
//! batch. The kernel applies a batch atomically: a failed batch changes
//! nothing, so the proxy's record of what is installed stays true.
//!
//! Only what changed is rewritten: unchanged chains are not touched, and
//! affinity sets are created once and kept, so an apply that adds one
//! service does not make every other service's clients forget their
//! backend. Existing connections never depend on rules (conntrack holds
//! their NAT), so deleting a chain does not cut them.

use std::fmt::Write;

use super::{Chain, Rule, Ruleset, UDP_TIMEOUT, text};

/// One batch in `nft`'s text syntax, a command a line, and how many
/// commands it holds.
///
/// Text, not `nft -j`'s JSON: `nft` parses it in less than half the time,
/// and a first apply of 5000 ports is 17 MB of JSON (see `text`).
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) text: String,
    pub(crate) commands: usize,
}

/// One command of a batch, borrowing the rule set.
enum Command<'a> {
    AddTable,
    DeleteTable,
    AddChain(&'a str, &'a Chain),
    FlushChain(&'a str),
    DeleteChain(&'a str),
    AddSet(&'a str, u32),
    DeleteSet(&'a str),
    AddRule(&'a str, &'a Rule),
}

impl Command<'_> {
    /// Appends the command and its newline to `out`, written in place:
    /// a first apply renders tens of thousands of commands.
    fn render(&self, table: &str, out: &mut String) -> Result<(), text::Unsupported> {
        let written = match self {
            Command::AddTable => write!(out, "add table ip {table}"),
            Command::DeleteTable => write!(out, "delete table ip {table}"),
            Command::AddChain(name, chain) => {
                let _ = write!(out, "add chain ip {table} {name}");
                match chain.hook {
                    Some(hook) => {
                        let (kind, point) = (text::keyword(&hook.kind)?, text::keyword(&hook.hook)?);
                        write!(out, " {{ type {kind} hook {point} priority {}; policy accept; }}", hook.priority)
                    }
                    None => Ok(()),
                }
            }
            Command::FlushChain(name) => write!(out, "flush chain ip {table} {name}"),
            Command::DeleteChain(name) => write!(out, "delete chain ip {table} {name}"),
            // `update` from the packet path needs no `dynamic` flag.
            Command::AddSet(name, secs) => write!(out, "add set ip {table} {name} {{ type ipv4_addr; flags timeout; timeout {secs}s; }}"),
            Command::DeleteSet(name) => write!(out, "delete set ip {table} {name}"),
            Command::AddRule(chain, rule) => {
                let _ = write!(out, "add rule ip {table} {chain} ");
                text::statements(out, &rule.statements)?;
                match &rule.comment {
                    // `names::comment` leaves no quote in it.
                    Some(comment) => write!(out, " comment \"{comment}\""),
                    None => Ok(()),
                }
            }
        };
        // Writing to a String cannot fail.
        let _ = written;
        out.push('\n');
        Ok(())
    }
}

/// The commands that take the table from `installed` to `desired`, in an
/// order the kernel accepts: new chains and sets first (rules refer to
/// them), then changed chains are flushed and refilled, then what nothing
/// refers to any more is deleted. Empty when nothing changed.
fn commands<'a>(installed: &'a Ruleset, desired: &'a Ruleset) -> Vec<Command<'a>> {
    let mut out = Vec::new();
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) {
            out.push(Command::AddChain(name, chain));
        }
    }
    for (name, &secs) in &desired.sets {
        if installed.sets.get(name) != Some(&secs) {
            out.push(Command::AddSet(name, secs));
        }
    }
    for (name, chain) in &desired.chains {
        let old = installed.chains.get(name);
        if old.is_some_and(|c| c.same_rules(chain)) {
            continue;
        }
        // A chain made empty just before (`additions`) needs no flush.
        if old.is_some_and(|c| !c.rules.is_empty()) {
            out.push(Command::FlushChain(name));
        }
        for rule in chain.rules.iter() {
            out.push(Command::AddRule(name, rule));
        }
    }
    // A chain can only be deleted once nothing jumps to it: flush every
    // stale chain first (a service chain's rules refer to its endpoint
    // chains), then delete them.
    let stale: Vec<&String> = installed.chains.keys().filter(|n| !desired.chains.contains_key(*n)).collect();
    for name in &stale {
        out.push(Command::FlushChain(name));
    }
    for name in stale {
        out.push(Command::DeleteChain(name));
    }
    for name in installed.sets.keys().filter(|n| !desired.sets.contains_key(*n)) {
        out.push(Command::DeleteSet(name));
    }
    out
}

fn document(table: &str, commands: Vec<Command<'_>>) -> Batch {
    let mut text = String::with_capacity(commands.len() * 160);
    for command in &commands {
        // Every statement the rules hold comes from `expr`'s builders,
        // each of which `text` renders (its tests render them all).
        command.render(table, &mut text).expect("the rule builders make only what nft text renders");
    }
    Batch { text, commands: commands.len() }
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
            objects.push(Command::AddChain(name, chain));
        }
    }
    for (name, &secs) in &desired.sets {
        if installed.sets.get(name) != Some(&secs) {
            objects.push(Command::AddSet(name, secs));
        }
    }
    (!objects.is_empty()).then(|| document(table, objects))
}

/// Records in `installed` what the [`additions`] batch for `desired` made
/// (all its new chains, empty, but `apart`'s, and its sets).
pub(crate) fn stage(installed: &mut Ruleset, desired: &Ruleset, apart: &[String]) {
    for (name, chain) in &desired.chains {
        if !installed.chains.contains_key(name) && apart.binary_search(name).is_err() {
            installed.chains.insert(name.clone(), Chain { hook: chain.hook, rules: Default::default() });
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
            objects.push(Command::AddChain(name, chain));
        }
    }
    for name in chains {
        for rule in desired.chains.get(name).map(|c| c.rules.as_slice()).unwrap_or_default() {
            objects.push(Command::AddRule(name, rule));
        }
    }
    document(table, objects)
}

/// The batch that brings `installed` to `desired`, or `None` if they agree.
pub(crate) fn transaction(table: &str, installed: &Ruleset, desired: &Ruleset) -> Option<Batch> {
    let objects = commands(installed, desired);
    (!objects.is_empty()).then(|| document(table, objects))
}

/// The batch that (re)creates the table from nothing: whatever a previous
/// run left is deleted in the same transaction (add, delete, add is the
/// idiom that works whether or not the table exists).
pub(crate) fn start(table: &str, desired: &Ruleset) -> Batch {
    let empty = Ruleset::default();
    let mut objects = vec![Command::AddTable, Command::DeleteTable, Command::AddTable];
    objects.extend(commands(&empty, desired));
    document(table, objects)
}

/// The `ct timeout` object UDP service flows get, made once the table is
/// (rules of later batches refer to it). The table name is checked to be
/// an identifier and the timeout is a number, so nothing else can end up
/// in the command.
pub(crate) fn udp_timeout(table: &str, udp_idle_secs: u32) -> String {
    format!("add ct timeout ip {table} {UDP_TIMEOUT} {{ protocol udp; l3proto ip; policy = {{ unreplied: {udp_idle_secs}, replied: {udp_idle_secs} }}; }}\n")
}

/// The batch that removes the table and everything in it.
pub(crate) fn shutdown(table: &str) -> Batch {
    document(table, vec![Command::DeleteTable])
}
