//! Column-aligned tables, padded as kubectl's tabwriter pads them.

/// Renders rows under a header, three spaces between columns.
pub fn render(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.push_str(&line(row, &widths));
        out.push('\n');
    }
    out
}

/// One row padded to `widths` (for rows printed as they come, under a
/// header printed earlier).
pub fn line(row: &[String], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, cell) in row.iter().enumerate() {
        let last = i + 1 == row.len();
        out.push_str(cell);
        if !last {
            let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(cell.chars().count()) + 3;
            out.push_str(&" ".repeat(pad));
        }
    }
    out.trim_end().to_owned()
}

/// The widths of a header and rows.
pub fn widths(header: &[String], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    widths
}
