//! The rule set and its transactions, checked without a kernel: what each
//! kind of service port becomes, and that an apply rewrites only what
//! changed, in an order `nft` accepts.

use std::net::SocketAddrV4;

use super::*;
use crate::table::CheckedPort;

fn config() -> ProxyConfig {
    ProxyConfig::new("10.98.0.0/16".parse().unwrap(), "10.245.0.0/24".parse().unwrap(), "dlp0")
}

fn port(name: &str, protocol: Protocol, frontends: &[&str], backends: &[&str], affinity: Option<u32>) -> CheckedPort {
    let addrs = |list: &[&str]| list.iter().map(|a| a.parse::<SocketAddrV4>().unwrap()).collect();
    CheckedPort { name: name.into(), protocol, frontends: addrs(frontends), backends: addrs(backends), affinity_secs: affinity }
}

fn web() -> CheckedPort {
    port("default/web:http", Protocol::Tcp, &["10.98.0.10:80", "127.0.0.1:30080"], &["10.245.0.2:8080", "10.245.0.3:8080"], None)
}

/// A chain's rules as JSON text, for `contains` checks.
fn json(rs: &Ruleset, chain: &str) -> String {
    let chain = rs.chains.get(chain).unwrap_or_else(|| panic!("no chain {chain} in {:?}", rs.chains.keys().collect::<Vec<_>>()));
    serde_json::to_string(&chain.rules.iter().map(|r| &r.statements).collect::<Vec<_>>()).unwrap()
}

/// Each command of a batch as "verb kind name" (the chain's, for a rule).
fn commands(batch: &Batch) -> Vec<String> {
    let lines: Vec<&str> = batch.text.lines().collect();
    assert_eq!(lines.len(), batch.commands, "{}", batch.text);
    lines
        .iter()
        .map(|line| {
            // `VERB KIND ip TABLE [NAME ...]`
            let words: Vec<&str> = line.split(' ').collect();
            assert_eq!(words[2], "ip", "{line}");
            let name = if words[1] == "table" { words[3] } else { words[4] };
            format!("{} {} {name}", words[0], words[1])
        })
        .collect()
}

#[test]
fn an_empty_table_still_guards_and_refuses_nothing() {
    let rs = ruleset(&config(), &[]);
    assert!(rs.chains[SERVICES].rules.is_empty());
    assert!(rs.sets.is_empty());
    let forward = json(&rs, FILTER_FORWARD);
    assert!(forward.contains(r#"{"prefix":{"addr":"10.245.0.0","len":24}}"#) && forward.contains(r#"{"prefix":{"addr":"10.98.0.0","len":16}}"#), "{forward}");
    assert!(forward.contains(r#""left":{"meta":{"key":"oifname"}},"right":{"set":["dlp0","lo"]},"op":"!=""#), "{forward}");
    assert!(forward.contains(r#""drop":null"#), "{forward}");
    assert!(json(&rs, "filter-output").contains(r#""field":"daddr""#));
    let input = json(&rs, FILTER_INPUT);
    assert!(input.contains("127.0.0.0") && !input.contains("reject"), "{input}");
    // Base chains hook where kube-proxy's do.
    assert_eq!(rs.chains["nat-output"].hook, Some(Hook { kind: NfChainType::NAT, hook: NfHook::Output, priority: -100 }));
    assert_eq!(rs.chains["ct-prerouting"].hook.unwrap().priority, -150);
    assert!(transaction("t", &rs, &rs).is_none(), "nothing changed, nothing to run");
}

#[test]
fn a_port_with_backends_is_dispatched_round_robin_and_dnated() {
    let web = web();
    let rs = ruleset(&config(), std::slice::from_ref(&web));
    let service = names::service_chain(&web);
    let dispatch = json(&rs, SERVICES);
    assert!(dispatch.contains(r#"{"concat":["10.98.0.10","tcp",80]},{"goto":{"target":"svc-"#), "{dispatch}");
    assert!(dispatch.contains(r#"{"concat":["127.0.0.1","tcp",30080]}"#), "{dispatch}");
    let svc = json(&rs, &service);
    assert!(svc.contains(r#""numgen":{"mode":"inc","mod":2,"offset":0}"#), "{svc}");
    assert!(svc.contains(r#""left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.245.0.0","len":24}},"op":"!=""#), "{svc}");
    let ep = json(&rs, &names::endpoint_chain(&web, "10.245.0.3:8080".parse().unwrap()));
    assert!(ep.contains(r#"{"dnat":{"addr":"10.245.0.3","family":"ip","port":8080}}"#), "{ep}");
    assert!(ep.contains(r#""right":"10.245.0.3","op":"=="}},{"jump":{"target":"mark-for-masquerade"}}"#), "hairpin: {ep}");
    assert!(rs.chains[&service].rules.iter().all(|r| r.comment.as_deref() == Some("default/web:http")));
    // One backend needs no number generator.
    let one = port("default/one:http", Protocol::Tcp, &["10.98.0.11:80"], &["10.245.0.2:80"], None);
    let rs = ruleset(&config(), std::slice::from_ref(&one));
    assert!(!json(&rs, &names::service_chain(&one)).contains("numgen"));
}

/// Which endpoint chain each of `connections` new connections goes to,
/// evaluating a service chain's pick rules as the kernel does: each
/// `numgen inc mod m` has its own counter, advanced when the rule is
/// evaluated.
fn picks(chain: &Chain, connections: usize) -> Vec<String> {
    use nftables::expr::{Expression, NamedExpression};
    use nftables::stmt::Statement;
    let mut counters = vec![0u32; chain.rules.len()];
    (0..connections)
        .map(|_| {
            for (i, rule) in chain.rules.iter().enumerate() {
                let mut taken = true;
                for statement in &rule.statements {
                    match statement {
                        Statement::Match(m) => match &m.left {
                            Expression::Named(NamedExpression::Numgen(ng)) => {
                                let value = counters[i] % ng.ng_mod;
                                counters[i] += 1;
                                taken &= m.right == Expression::Number(value);
                            }
                            // The masquerade mark: a jump that returns.
                            _ => taken = false,
                        },
                        Statement::Goto(target) if taken => return target.target.to_string(),
                        _ => {}
                    }
                    if !taken {
                        break;
                    }
                }
            }
            panic!("no rule took the connection")
        })
        .collect()
}

#[test]
fn endpoints_are_picked_in_turn_by_a_rule_each_and_past_sixteen_by_a_map() {
    for n in [1, 2, 3, 5, 16] {
        let backends: Vec<String> = (0..n).map(|i| format!("10.245.0.{}:8080", i + 2)).collect();
        let p = port("default/web:http", Protocol::Tcp, &["10.98.0.10:80"], &backends.iter().map(String::as_str).collect::<Vec<_>>(), None);
        let rs = ruleset(&config(), std::slice::from_ref(&p));
        let chain = &rs.chains[&names::service_chain(&p)];
        assert!(!json(&rs, &names::service_chain(&p)).contains("vmap"), "{n}: no map");
        let expected: Vec<String> = p.backends.iter().map(|&b| names::endpoint_chain(&p, b)).collect();
        // Three rounds: every endpoint once a round, in order.
        let got = picks(chain, 3 * n);
        for round in got.chunks(n) {
            assert_eq!(round, expected.as_slice(), "{n} endpoints");
        }
    }
    let backends: Vec<String> = (0..17).map(|i| format!("10.245.0.{}:8080", i + 2)).collect();
    let p = port("default/web:http", Protocol::Tcp, &["10.98.0.10:80"], &backends.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let svc = json(&ruleset(&config(), std::slice::from_ref(&p)), &names::service_chain(&p));
    assert!(svc.contains(r#""numgen":{"mode":"inc","mod":17,"offset":0}"#) && svc.contains("vmap"), "{svc}");
}

#[test]
fn affinity_keeps_clients_in_a_set_per_backend() {
    let sticky = CheckedPort { affinity_secs: Some(10), ..web() };
    let rs = ruleset(&config(), std::slice::from_ref(&sticky));
    assert_eq!(rs.sets.len(), 2);
    assert!(rs.sets.values().all(|&secs| secs == 10));
    let set = names::affinity_set(&sticky, "10.245.0.2:8080".parse().unwrap(), 10);
    let svc = json(&rs, &names::service_chain(&sticky));
    assert!(svc.contains(&format!(r#""right":"@{set}","op":"=="}}}},{{"goto""#)), "{svc}");
    let ep = json(&rs, &names::endpoint_chain(&sticky, "10.245.0.2:8080".parse().unwrap()));
    assert!(ep.contains(&format!(r#"{{"set":{{"op":"update","elem":{{"payload":{{"protocol":"ip","field":"saddr"}}}},"set":"@{set}"}}}}"#)), "{ep}");
}

#[test]
fn ports_without_backends_refuse_tcp_with_reset_and_udp_with_port_unreachable() {
    let tcp = port("ns/empty:http", Protocol::Tcp, &["10.98.0.12:80"], &[], None);
    let udp = port("ns/empty:dns", Protocol::Udp, &["10.98.0.12:53"], &[], None);
    let rs = ruleset(&config(), &[tcp, udp]);
    assert!(rs.chains[SERVICES].rules.is_empty());
    let input = json(&rs, FILTER_INPUT);
    assert!(input.contains(r#"{"reject":{"type":"tcp reset"}}"#), "{input}");
    assert!(input.contains(r#"{"reject":{"type":"icmp","expr":"port-unreachable"}}"#), "{input}");
    assert!(input.contains(r#"{"set":[{"concat":["10.98.0.12",80]}]}"#), "{input}");
    assert!(input.contains(r#""left":{"ct":{"key":"state"}},"right":"new","op":"in""#), "only new connections: {input}");
}

#[test]
fn udp_frontends_get_the_idle_timeout() {
    let dns = port("kube-system/dns:dns", Protocol::Udp, &["10.98.0.10:53"], &["10.245.0.5:53"], None);
    let rs = ruleset(&config(), &[dns]);
    for chain in ["ct-prerouting", "ct-output"] {
        assert!(json(&rs, chain).contains(r#"{"ct timeout":"udp-idle"}"#), "{}", json(&rs, chain));
    }
    assert_eq!(udp_timeout("t", 30), "add ct timeout ip t udp-idle { protocol udp; l3proto ip; policy = { unreplied: 30, replied: 30 }; }\n");
    let start = start("t", &rs);
    assert_eq!(&commands(&start)[..3], ["add table t", "delete table t", "add table t"]);
}

#[test]
fn an_apply_rewrites_only_the_port_that_changed_in_an_order_nft_accepts() {
    let other = port("ns/other:http", Protocol::Tcp, &["10.98.0.20:80"], &["10.245.0.9:80"], None);
    let before = ruleset(&config(), &[web(), other.clone()]);
    let mut moved = web();
    moved.backends = vec!["10.245.0.3:8080".parse().unwrap(), "10.245.0.4:8080".parse().unwrap()];
    let after = ruleset(&config(), &[moved.clone(), other.clone()]);
    let cmds = commands(&transaction("t", &before, &after).unwrap());

    let gone = names::endpoint_chain(&web(), "10.245.0.2:8080".parse().unwrap());
    let new = names::endpoint_chain(&moved, "10.245.0.4:8080".parse().unwrap());
    let service = names::service_chain(&moved);
    let position = |c: &str| cmds.iter().position(|x| x == c).unwrap_or_else(|| panic!("{c} not in {cmds:#?}"));
    assert!(position(&format!("add chain {new}")) < position(&format!("flush chain {service}")));
    assert!(position(&format!("flush chain {service}")) < position(&format!("delete chain {gone}")));
    assert!(position(&format!("flush chain {gone}")) < position(&format!("delete chain {gone}")));
    assert_eq!(position(&format!("delete chain {gone}")), cmds.len() - 1);
    // The other port, the kept endpoint and the dispatch map are untouched.
    let kept = names::endpoint_chain(&moved, "10.245.0.3:8080".parse().unwrap());
    for untouched in [names::service_chain(&other), kept, SERVICES.to_owned(), FILTER_FORWARD.to_owned()] {
        assert!(!cmds.iter().any(|c| c.ends_with(&format!(" {untouched}"))), "{untouched} was touched: {cmds:#?}");
    }
}

#[test]
fn affinity_sets_outlive_applies_but_not_their_port() {
    let sticky = CheckedPort { affinity_secs: Some(10), ..web() };
    let one = ruleset(&config(), std::slice::from_ref(&sticky));
    let extra = port("ns/extra:http", Protocol::Tcp, &["10.98.0.30:80"], &["10.245.0.9:80"], None);
    let two = ruleset(&config(), &[sticky.clone(), extra]);
    let cmds = commands(&transaction("t", &one, &two).unwrap());
    assert!(!cmds.iter().any(|c| c.contains(" set ")), "adding a port leaves sets alone: {cmds:#?}");

    let longer = CheckedPort { affinity_secs: Some(20), ..sticky };
    let three = ruleset(&config(), &[longer]);
    let cmds = commands(&transaction("t", &one, &three).unwrap());
    assert_eq!(cmds.iter().filter(|c| c.starts_with("add set aff-")).count(), 2, "{cmds:#?}");
    assert_eq!(cmds.iter().filter(|c| c.starts_with("delete set aff-")).count(), 2, "{cmds:#?}");
    let none = ruleset(&config(), &[]);
    let cmds = commands(&transaction("t", &one, &none).unwrap());
    assert_eq!(cmds.iter().filter(|c| c.starts_with("delete set")).count(), 2);
    assert_eq!(commands(&shutdown("t")), ["delete table t"]);
}

#[test]
fn new_chains_and_sets_come_first_in_a_batch_of_their_own() {
    let before = ruleset(&config(), &[]);
    let sticky = CheckedPort { affinity_secs: Some(10), ..web() };
    let after = ruleset(&config(), std::slice::from_ref(&sticky));
    let batch = additions("t", &before, &after, &[]);
    let cmds = commands(&batch.unwrap());
    let mut staged = before.clone();
    stage(&mut staged, &after, &[]);
    assert_eq!(cmds.iter().filter(|c| c.starts_with("add chain ")).count(), 3, "{cmds:#?}");
    assert_eq!(cmds.iter().filter(|c| c.starts_with("add set ")).count(), 2, "{cmds:#?}");
    assert!(!cmds.iter().any(|c| c.starts_with("add rule")), "{cmds:#?}");
    // What is left creates nothing: every rule lands in a chain that exists.
    let rest = commands(&transaction("t", &staged, &after).unwrap());
    assert!(rest.iter().all(|c| c.starts_with("add rule") || c.starts_with("flush chain")), "{rest:#?}");
    // Chains just made are empty: only chains that held rules are flushed.
    assert!(rest.iter().filter(|c| c.starts_with("flush chain")).all(|c| before.chains.contains_key(&c["flush chain ".len()..])), "{rest:#?}");
    assert!(additions("t", &after, &after, &[]).is_none());
}

#[test]
fn many_new_chains_are_made_apart_each_port_with_its_endpoints() {
    let frontends: Vec<String> = (0..6).map(|i| format!("10.98.0.{}:80", 10 + i)).collect();
    let ports: Vec<CheckedPort> =
        frontends.iter().enumerate().map(|(i, f)| port(&format!("ns/p{i}:http"), Protocol::Tcp, &[f], &["10.245.0.2:80", "10.245.0.3:80"], None)).collect();
    let before = ruleset(&config(), &[]);
    let after = ruleset(&config(), &ports);
    let fresh: Vec<String> = after.chains.keys().filter(|n| !before.chains.contains_key(*n)).cloned().collect();
    assert_eq!(fresh.len(), 18);
    assert!(additions("t", &before, &after, &fresh).is_none(), "no sets, no other new chain");
    let mut staged = before.clone();
    stage(&mut staged, &after, &fresh);
    assert_eq!(staged, before, "chains made apart are recorded once they are made");
    let groups = groups(&fresh, 4);
    assert!((2..=4).contains(&groups.len()), "{groups:#?}");
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 18);
    for p in &ports {
        let group = groups.iter().find(|g| g.contains(&names::service_chain(p))).unwrap();
        assert!(p.backends.iter().all(|&b| group.contains(&names::endpoint_chain(p, b))), "{group:#?}");
    }
    // Each part makes its chains, then fills them.
    let cmds = commands(&apart("t", &groups[0], &after));
    let made = groups[0].len();
    assert!(cmds[..made].iter().all(|c| c.starts_with("add chain ")) && cmds[made..].iter().all(|c| c.starts_with("add rule ")), "{cmds:#?}");
}

#[test]
fn across_nodes_pods_may_send_to_the_cluster_and_answer_its_nodes_only() {
    let mut multi = config();
    multi.cluster_cidr = Some("10.245.0.0/16".parse().unwrap());
    let peers: Vec<Ipv4Addr> = vec!["192.0.2.3".parse().unwrap(), "192.0.2.2".parse().unwrap()];
    let forward = json(&ruleset_for(&multi, &[], &peers), FILTER_FORWARD);
    // From this node's pods: anything but the cluster's pods and nodes,
    // by any link but the bridge, is dropped.
    assert!(forward.contains(r#""right":{"set":[{"prefix":{"addr":"10.245.0.0","len":16}},"192.0.2.2","192.0.2.3"]},"op":"!=""#), "{forward}");
    // To this node's pods and services: only by the bridge or lo, as on a
    // node alone.
    let alone = json(&ruleset(&config(), &[]), FILTER_FORWARD);
    assert!(!alone.contains("192.0.2") && !alone.contains(r#""len":16}},"#), "{alone}");
}

#[test]
fn every_kind_of_port_renders_as_nft_text() {
    let mut multi = config();
    multi.cluster_cidr = Some("10.245.0.0/16".parse().unwrap());
    let many: Vec<String> = (0..17).map(|i| format!("10.245.0.{}:8080", i + 2)).collect();
    let ports = [
        web(),
        CheckedPort { affinity_secs: Some(10), ..port("ns/sticky:http", Protocol::Tcp, &["10.98.0.11:80"], &["10.245.0.2:80"], None) },
        port("ns/dns:dns", Protocol::Udp, &["10.98.0.12:53"], &["10.245.0.3:53"], None),
        port("ns/many:http", Protocol::Tcp, &["10.98.0.13:80"], &many.iter().map(String::as_str).collect::<Vec<_>>(), None),
        port("ns/none:http", Protocol::Tcp, &["10.98.0.14:80"], &[], None),
        port("ns/none:dns", Protocol::Udp, &["10.98.0.14:53"], &[], None),
    ];
    let rs = ruleset_for(&multi, &ports, &["192.0.2.2".parse().unwrap()]);
    let batch = start("t", &rs);
    let rules: usize = rs.chains.values().map(|c| c.rules.len()).sum();
    assert_eq!(batch.commands, 3 + rs.chains.len() + rs.sets.len() + rules);
    let text = &batch.text;
    assert!(text.starts_with("add table ip t\ndelete table ip t\nadd table ip t\n"), "{text}");
    assert!(text.contains("add chain ip t nat-prerouting { type nat hook prerouting priority -100; policy accept; }\n"), "{text}");
    assert!(text.contains(" { type ipv4_addr; flags timeout; timeout 10s; }\n"), "{text}");
    assert!(text.contains(" vmap { 0 : goto ep-"), "past sixteen endpoints, a map: {text}");
    assert!(text.contains(" comment \"ns/sticky:http\"\n"), "{text}");
    assert!(text.contains("meta oifname != { \"dlp0\", \"lo\" } counter drop"), "{text}");
    assert_eq!(commands(&shutdown("t")), ["delete table t"]);
}
