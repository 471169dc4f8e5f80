//! Markdown for a pull-request comment: a summary table, then one
//! collapsible diff per object.

use super::{describe, summary_line, unified};
use crate::{Change, Plan};

/// The plan as a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let held: String = plan.held.iter().map(|h| format!("- ⚖️ {}\n", escape(&h.to_string()))).collect();
    if plan.is_empty() {
        return format!("**Driftless plan:** no changes.\n{}", if held.is_empty() { String::new() } else { format!("\n{held}") });
    }
    let mut out = format!("**Driftless plan:** {}\n\n", summary_line(&plan.summary()));
    if !held.is_empty() {
        out.push_str(&held);
        out.push('\n');
    }
    if !plan.refused.is_empty() {
        out.push_str("❌ The daemon would refuse this commit whole and keep running the last good revision:\n\n");
        for refusal in &plan.refused {
            out.push_str(&format!("- `{}`: `{}`: {}\n", escape(&refusal.object.kind_name()), escape(&refusal.field()), escape(&refusal.message)));
        }
        out.push('\n');
    }
    out.push_str("| | Kind | Namespace | Name | Change |\n|---|---|---|---|---|\n");
    for action in &plan.actions {
        let icon = match action.change {
            Change::Create => "➕",
            Change::Update { .. } => "✏️",
            Change::Replace { .. } => "♻️",
            Change::Delete => "🗑️",
        };
        let change = match &action.change {
            Change::Update { effect, fields } => {
                let first: Vec<String> = fields.iter().take(3).map(|f| format!("`{}`", escape(&f.path))).collect();
                let more = if fields.len() > 3 { format!(" and {} more", fields.len() - 3) } else { String::new() };
                format!("update, **{}**: {}{more}", effect.describe(), first.join(", "))
            }
            Change::Replace { reason, .. } => format!("**replace**: {}", escape(reason)),
            _ => describe(action),
        };
        out.push_str(&format!(
            "| {icon} | {} | {} | `{}` | {change} |\n",
            action.object.kind,
            action.object.namespace.as_deref().unwrap_or("—"),
            escape(&action.object.name),
        ));
    }
    for action in &plan.actions {
        let diff = unified(action);
        let fence = "`".repeat(longest_backtick_run(&diff).max(2) + 1);
        out.push_str(&format!(
            "\n<details><summary>{} {}</summary>\n\n{fence}diff\n{}{fence}\n\n</details>\n",
            action.change.verb(),
            action.object,
            diff.lines().skip(2).map(|l| format!("{l}\n")).collect::<String>(),
        ));
    }
    out
}

/// Table cells must not break the row.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
