//! Small builders for the nftables expressions and statements the rules
//! use, so the rule set reads close to `nft` syntax.

use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use nftables::expr::{self, BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, SetItem, Verdict};
use nftables::stmt::{self, JumpTarget, Match, Operator, Statement};

pub(crate) type Stmt = Statement<'static>;
pub(crate) type Expr = Expression<'static>;

pub(crate) fn payload(protocol: &'static str, field: &'static str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField { protocol: protocol.into(), field: field.into() })))
}

pub(crate) fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(crate) fn ct(key: &'static str) -> Expr {
    Expression::Named(NamedExpression::CT(expr::CT { key: key.into(), family: None, dir: None }))
}

pub(crate) fn string(s: impl Into<String>) -> Expr {
    Expression::String(s.into().into())
}

pub(crate) fn ip(addr: Ipv4Addr) -> Expr {
    string(addr.to_string())
}

pub(crate) fn prefix(net: Ipv4Net) -> Expr {
    Expression::Named(NamedExpression::Prefix(expr::Prefix { addr: Box::new(ip(net.network())), len: u32::from(net.prefix_len()) }))
}

pub(crate) fn concat(parts: Vec<Expr>) -> Expr {
    Expression::Named(NamedExpression::Concat(parts))
}

/// An anonymous set of plain elements: `{ a, b }`.
pub(crate) fn set(elements: Vec<Expr>) -> Expr {
    Expression::Named(NamedExpression::Set(elements.into_iter().map(SetItem::Element).collect()))
}

/// An anonymous verdict map's data: `{ key : verdict, ... }`.
pub(crate) fn vmap_data(entries: Vec<(Expr, Verdict<'static>)>) -> Expr {
    Expression::Named(NamedExpression::Set(entries.into_iter().map(|(k, v)| SetItem::Mapping(k, Expression::Verdict(v))).collect()))
}

/// `daddr . port` as the rules key frontends: `ip daddr . th dport`.
pub(crate) fn frontend_key() -> Expr {
    concat(vec![payload("ip", "daddr"), payload("th", "dport")])
}

pub(crate) fn frontend_element(addr: SocketAddrV4) -> Expr {
    concat(vec![ip(*addr.ip()), Expression::Number(u32::from(addr.port()))])
}

fn matching(left: Expr, op: Operator, right: Expr) -> Stmt {
    Statement::Match(Match { left, right, op })
}

pub(crate) fn eq(left: Expr, right: Expr) -> Stmt {
    matching(left, Operator::EQ, right)
}

pub(crate) fn ne(left: Expr, right: Expr) -> Stmt {
    matching(left, Operator::NEQ, right)
}

/// `ct state new` and the like (a flag match).
pub(crate) fn ct_state(state: &'static str) -> Stmt {
    matching(ct("state"), Operator::IN, string(state))
}

pub(crate) fn l4proto(protocol: &'static str) -> Stmt {
    eq(meta(MetaKey::L4proto), string(protocol))
}

pub(crate) fn goto(chain: &str) -> Verdict<'static> {
    Verdict::Goto(JumpTarget { target: chain.to_owned().into() })
}

pub(crate) fn goto_stmt(chain: &str) -> Stmt {
    Statement::Goto(JumpTarget { target: chain.to_owned().into() })
}

pub(crate) fn jump(chain: &str) -> Stmt {
    Statement::Jump(JumpTarget { target: chain.to_owned().into() })
}

pub(crate) fn vmap(key: Expr, data: Expr) -> Stmt {
    Statement::VerdictMap(stmt::VerdictMap { key, data })
}

pub(crate) fn counter() -> Stmt {
    Statement::Counter(stmt::Counter::Anonymous(None))
}

/// `meta mark set meta mark | bit`.
pub(crate) fn set_mark_bit(bit: u32) -> Stmt {
    let value = Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![meta(MetaKey::Mark), Expression::Number(bit)])));
    Statement::Mangle(stmt::Mangle { key: meta(MetaKey::Mark), value })
}

/// `meta mark set meta mark ^ bit` (clears a bit known to be set).
pub(crate) fn flip_mark_bit(bit: u32) -> Stmt {
    let value = Expression::BinaryOperation(Box::new(BinaryOperation::XOR(meta(MetaKey::Mark), Expression::Number(bit))));
    Statement::Mangle(stmt::Mangle { key: meta(MetaKey::Mark), value })
}

/// `meta mark & bit == 0`.
pub(crate) fn mark_bit_clear(bit: u32) -> Stmt {
    let masked = Expression::BinaryOperation(Box::new(BinaryOperation::AND(meta(MetaKey::Mark), Expression::Number(bit))));
    eq(masked, Expression::Number(0))
}

pub(crate) fn dnat(to: SocketAddrV4) -> Stmt {
    Statement::DNAT(Some(stmt::NAT {
        addr: Some(ip(*to.ip())),
        family: Some(stmt::NATFamily::IP),
        port: Some(Expression::Number(u32::from(to.port()))),
        flags: None,
    }))
}

pub(crate) fn masquerade() -> Stmt {
    // fully-random: with many clients masqueraded to one gateway address,
    // predictable source ports collide (kube-proxy does the same).
    Statement::Masquerade(Some(stmt::NAT { addr: None, family: None, port: None, flags: Some([stmt::NATFlag::FullyRandom].into_iter().collect()) }))
}

pub(crate) fn reject_tcp_reset() -> Stmt {
    Statement::Reject(Some(stmt::Reject { _type: Some(stmt::RejectType::TCPReset), expr: None }))
}

/// ICMP port unreachable: what a UDP client sees as "connection refused".
pub(crate) fn reject_port_unreachable() -> Stmt {
    Statement::Reject(Some(stmt::Reject { _type: Some(stmt::RejectType::ICMP), expr: Some(nftables::types::RejectCode::PortUnreach) }))
}

pub(crate) fn drop() -> Stmt {
    Statement::Drop(None)
}

pub(crate) fn ret() -> Stmt {
    Statement::Return(None)
}

/// `update @set { ip saddr }`: remember (or refresh) the client.
pub(crate) fn remember_client(set: &str) -> Stmt {
    Statement::Set(stmt::Set { op: stmt::SetOp::Update, elem: payload("ip", "saddr"), set: format!("@{set}").into() })
}

/// `ip saddr @set`.
pub(crate) fn client_in(set: &str) -> Stmt {
    eq(payload("ip", "saddr"), string(format!("@{set}")))
}

/// `ct timeout set "name"`.
pub(crate) fn ct_timeout(name: &str) -> Stmt {
    Statement::CTTimeout(string(name.to_owned()))
}

/// `numgen inc mod n`.
pub(crate) fn numgen_inc(n: u32) -> Expr {
    Expression::Named(NamedExpression::Numgen(expr::Numgen { mode: expr::NgMode::Inc, ng_mod: n, offset: Some(0) }))
}
