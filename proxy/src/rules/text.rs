//! The rule set's statements in `nft`'s own syntax: how batches reach
//! `nft -f`.
//!
//! Why not the JSON the statements are modelled on (the `nftables`
//! crate): `nft` reads its text syntax more than twice as fast. The same
//! first apply of 5,000 service ports costs it 0.38 s of user time as text
//! against 0.86 s as JSON, on one core per batch (docs/benchmarks.md).
//!
//! Only what the builders in `expr` make is rendered; anything else is
//! [`Unsupported`], which the unit tests (every kind of port, rendered)
//! would catch before a build ships. Names the rules use are checked
//! where they are made (`names`, `ProxyConfig::check`): identifiers of
//! `nft`'s unquoted form, and interface names without quotes.

use std::fmt::Write;

use nftables::expr::{BinaryOperation, Expression, MetaKey, NamedExpression, NgMode, SetItem, Verdict};
use nftables::stmt::{Counter, NATFamily, Operator, RejectType, SetOp, Statement};

use super::expr::{Expr, Stmt};

/// A statement or expression the renderer does not know.
#[derive(Debug, thiserror::Error)]
#[error("nft text: cannot render {0}")]
pub(crate) struct Unsupported(pub(crate) String);

type Result = std::result::Result<(), Unsupported>;

fn unsupported(what: &impl std::fmt::Debug) -> Unsupported {
    Unsupported(format!("{what:?}"))
}

/// A value's name as the `nftables` crate serializes it, which is the
/// keyword `nft` uses in its syntax too (`prerouting`, `l4proto`, …).
pub(crate) fn keyword<T: serde::Serialize + std::fmt::Debug>(value: &T) -> std::result::Result<String, Unsupported> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(unsupported(value)),
    }
}

/// Appends `statements` to `out`, separated by spaces.
pub(crate) fn statements(out: &mut String, statements: &[Stmt]) -> Result {
    for (i, statement) in statements.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        stmt(out, statement)?;
    }
    Ok(())
}

fn stmt(out: &mut String, statement: &Stmt) -> Result {
    match statement {
        Statement::Match(m) => {
            // Interface names are strings to nft, and must be quoted.
            let quoted = matches!(&m.left, Expression::Named(NamedExpression::Meta(meta)) if matches!(meta.key, MetaKey::Iifname | MetaKey::Oifname));
            expr(out, &m.left, false)?;
            match m.op {
                // Implicit: equality for a value, membership for a set,
                // a flag test for a bit mask (`ct state new`).
                Operator::EQ | Operator::IN => out.push(' '),
                Operator::NEQ => out.push_str(" != "),
                _ => return Err(unsupported(&m.op)),
            }
            expr(out, &m.right, quoted)
        }
        Statement::Jump(target) => write_str(out, format_args!("jump {}", target.target)),
        Statement::Goto(target) => write_str(out, format_args!("goto {}", target.target)),
        Statement::VerdictMap(map) => {
            expr(out, &map.key, false)?;
            out.push_str(" vmap ");
            expr(out, &map.data, false)
        }
        Statement::Counter(Counter::Anonymous(None)) => {
            out.push_str("counter");
            Ok(())
        }
        Statement::Mangle(mangle) => {
            expr(out, &mangle.key, false)?;
            out.push_str(" set ");
            expr(out, &mangle.value, false)
        }
        Statement::DNAT(Some(nat)) => {
            out.push_str("dnat");
            if let Some(family) = &nat.family {
                out.push_str(match family {
                    NATFamily::IP => " ip",
                    NATFamily::IP6 => " ip6",
                });
            }
            out.push_str(" to ");
            let addr = nat.addr.as_ref().ok_or_else(|| unsupported(nat))?;
            expr(out, addr, false)?;
            if let Some(port) = &nat.port {
                out.push(':');
                expr(out, port, false)?;
            }
            Ok(())
        }
        Statement::Masquerade(nat) => {
            out.push_str("masquerade");
            if let Some(nat) = nat {
                if nat.addr.is_some() || nat.port.is_some() || nat.family.is_some() {
                    return Err(unsupported(nat));
                }
                let mut flags: Vec<String> = nat.flags.iter().flatten().map(keyword).collect::<std::result::Result<_, _>>()?;
                flags.sort();
                if !flags.is_empty() {
                    out.push(' ');
                    out.push_str(&flags.join(","));
                }
            }
            Ok(())
        }
        Statement::Reject(Some(reject)) => match (&reject._type, &reject.expr) {
            (Some(RejectType::TCPReset), None) => write_str(out, format_args!("reject with tcp reset")),
            (Some(RejectType::ICMP), Some(code)) => write_str(out, format_args!("reject with icmp type {}", keyword(code)?)),
            _ => Err(unsupported(reject)),
        },
        Statement::Drop(None) => write_str(out, format_args!("drop")),
        Statement::Return(None) => write_str(out, format_args!("return")),
        Statement::Set(set) => {
            let op = match set.op {
                SetOp::Add => "add",
                SetOp::Update => "update",
            };
            write_str(out, format_args!("{op} {} {{ ", set.set))?;
            expr(out, &set.elem, false)?;
            out.push_str(" }");
            Ok(())
        }
        Statement::CTTimeout(Expression::String(name)) => write_str(out, format_args!("ct timeout set \"{name}\"")),
        other => Err(unsupported(other)),
    }
}

/// Appends one expression; strings are quoted when `quoted` (interface
/// names) and left bare otherwise (addresses, protocols, flags, `@set`).
fn expr(out: &mut String, expression: &Expr, quoted: bool) -> Result {
    match expression {
        Expression::String(s) if quoted => write_str(out, format_args!("\"{s}\"")),
        Expression::String(s) => write_str(out, format_args!("{s}")),
        Expression::Number(n) => write_str(out, format_args!("{n}")),
        Expression::BinaryOperation(operation) => {
            let (op, operands): (&str, Vec<&Expr>) = match operation.as_ref() {
                BinaryOperation::AND(a, b) => ("&", vec![a, b]),
                BinaryOperation::XOR(a, b) => ("^", vec![a, b]),
                BinaryOperation::OR(all) => ("|", all.iter().collect()),
                other => return Err(unsupported(other)),
            };
            for (i, operand) in operands.into_iter().enumerate() {
                if i > 0 {
                    write_str(out, format_args!(" {op} "))?;
                }
                expr(out, operand, quoted)?;
            }
            Ok(())
        }
        Expression::Verdict(verdict) => match verdict {
            Verdict::Goto(target) => write_str(out, format_args!("goto {}", target.target)),
            Verdict::Jump(target) => write_str(out, format_args!("jump {}", target.target)),
            other => Err(unsupported(other)),
        },
        Expression::Named(named) => match named {
            NamedExpression::Payload(nftables::expr::Payload::PayloadField(field)) => write_str(out, format_args!("{} {}", field.protocol, field.field)),
            NamedExpression::Meta(meta) => write_str(out, format_args!("meta {}", keyword(&meta.key)?)),
            NamedExpression::CT(ct) if ct.family.is_none() && ct.dir.is_none() => write_str(out, format_args!("ct {}", ct.key)),
            NamedExpression::Prefix(prefix) => {
                expr(out, &prefix.addr, quoted)?;
                write_str(out, format_args!("/{}", prefix.len))
            }
            NamedExpression::Concat(parts) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" . ");
                    }
                    expr(out, part, quoted)?;
                }
                Ok(())
            }
            NamedExpression::Set(items) => {
                out.push_str("{ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match item {
                        SetItem::Element(element) => expr(out, element, quoted)?,
                        SetItem::Mapping(key, value) => {
                            expr(out, key, quoted)?;
                            out.push_str(" : ");
                            expr(out, value, quoted)?;
                        }
                        other => return Err(unsupported(other)),
                    }
                }
                out.push_str(" }");
                Ok(())
            }
            NamedExpression::Numgen(numgen) => {
                let mode = match numgen.mode {
                    NgMode::Inc => "inc",
                    NgMode::Random => "random",
                };
                write_str(out, format_args!("numgen {mode} mod {}", numgen.ng_mod))?;
                match numgen.offset {
                    Some(offset) if offset != 0 => write_str(out, format_args!(" offset {offset}")),
                    _ => Ok(()),
                }
            }
            other => Err(unsupported(other)),
        },
        other => Err(unsupported(other)),
    }
}

fn write_str(out: &mut String, args: std::fmt::Arguments<'_>) -> Result {
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::expr::*;
    use super::*;

    fn render(list: Vec<Stmt>) -> String {
        let mut out = String::new();
        statements(&mut out, &list).unwrap();
        out
    }

    #[test]
    fn statements_read_as_nft_writes_them() {
        let f: std::net::SocketAddrV4 = "10.98.0.10:80".parse().unwrap();
        assert_eq!(
            render(vec![l4proto("udp"), eq(frontend_key(), set(vec![frontend_element(f)])), ct_timeout("udp-idle")]),
            "meta l4proto udp ip daddr . th dport { 10.98.0.10 . 80 } ct timeout set \"udp-idle\""
        );
        assert_eq!(
            render(vec![ne(meta(MetaKey::Oifname), set(vec![string("dlp0"), string("lo")])), counter(), drop()]),
            "meta oifname != { \"dlp0\", \"lo\" } counter drop"
        );
        assert_eq!(
            render(vec![ne(payload("ip", "saddr"), prefix("10.245.0.0/24".parse().unwrap())), jump("mark-for-masquerade")]),
            "ip saddr != 10.245.0.0/24 jump mark-for-masquerade"
        );
        assert_eq!(render(vec![set_mark_bit(0x4000)]), "meta mark set meta mark | 16384");
        assert_eq!(render(vec![mark_bit_clear(0x4000), ret()]), "meta mark & 16384 0 return");
        assert_eq!(render(vec![flip_mark_bit(0x4000)]), "meta mark set meta mark ^ 16384");
        assert_eq!(render(vec![masquerade()]), "masquerade fully-random");
        assert_eq!(render(vec![l4proto("tcp"), dnat("10.245.0.3:8080".parse().unwrap())]), "meta l4proto tcp dnat ip to 10.245.0.3:8080");
        assert_eq!(render(vec![ct_state("new"), reject_tcp_reset()]), "ct state new reject with tcp reset");
        assert_eq!(render(vec![reject_port_unreachable()]), "reject with icmp type port-unreachable");
        assert_eq!(render(vec![client_in("aff-1"), goto_stmt("ep-1")]), "ip saddr @aff-1 goto ep-1");
        assert_eq!(render(vec![remember_client("aff-1")]), "update @aff-1 { ip saddr }");
        assert_eq!(render(vec![eq(numgen_inc(3), nftables::expr::Expression::Number(0)), goto_stmt("ep-1")]), "numgen inc mod 3 0 goto ep-1");
        let map = vmap_data(vec![(nftables::expr::Expression::Number(0), goto("ep-0")), (nftables::expr::Expression::Number(1), goto("ep-1"))]);
        assert_eq!(render(vec![vmap(numgen_inc(2), map)]), "numgen inc mod 2 vmap { 0 : goto ep-0, 1 : goto ep-1 }");
    }

    #[test]
    fn what_the_builders_never_make_is_refused_not_mangled() {
        let mut out = String::new();
        let error = statements(&mut out, &[Statement::Accept(None)]).unwrap_err();
        assert!(error.to_string().contains("Accept"), "{error}");
    }
}
