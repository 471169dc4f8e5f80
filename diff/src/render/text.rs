//! Terminal text, optionally coloured.

use anstyle::{AnsiColor, Style};

use super::{brief, describe, summary_line, unified};
use crate::{Change, Plan};

/// The plan for a terminal. With `color`, additions are green, removals
/// red and updates yellow, as in `git diff`.
pub fn text(plan: &Plan, color: bool) -> String {
    let paint = |style: Style, text: &str| {
        if color { format!("{}{text}{}", style.render(), style.render_reset()) } else { text.to_owned() }
    };
    let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let yellow = Style::new().fg_color(Some(AnsiColor::Yellow.into()));
    let cyan = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let bold = Style::new().bold();

    let held: String = plan.held.iter().map(|h| format!("{}\n", paint(cyan, &format!("= {h}")))).collect();
    if plan.is_empty() {
        return format!("No changes.\n{held}");
    }
    let mut out = format!("{}\n{held}", paint(bold, &format!("Plan: {}", summary_line(&plan.summary()))));
    for refusal in &plan.refused {
        out.push_str(&format!("{}\n", paint(red.bold(), &format!("! refused: {refusal}"))));
    }
    for action in &plan.actions {
        let (mark, style) = match action.change {
            Change::Create => ("+", green),
            Change::Update { .. } => ("~", yellow),
            Change::Replace { .. } => ("±", yellow),
            Change::Delete => ("-", red),
        };
        let heading = format!("{mark} {} ({})", action.object, describe(action));
        out.push_str(&format!("\n{}\n", paint(style.bold(), &heading)));
        if let Change::Update { fields, .. } | Change::Replace { fields, .. } = &action.change {
            for field in fields {
                out.push_str(&format!("    {}: {} → {}\n", field.path, brief(field.before.as_ref()), brief(field.after.as_ref())));
            }
        }
        for line in unified(action).lines().skip(2) {
            let style = match line.as_bytes().first() {
                Some(b'+') => green,
                Some(b'-') => red,
                Some(b'@') => cyan,
                _ => Style::new(),
            };
            out.push_str(&format!("  {}\n", paint(style, line)));
        }
    }
    out
}
