//! Tables in virsh's style: a header, a rule, left-aligned columns. On a terminal a table
//! fits its width: the widest columns narrow, and a cell too long for its column keeps its
//! start and end (a path keeps its file name) with `…` between; `--full` shows every cell
//! whole. Output to a pipe or a file is never cut.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `--full`: cells are never cut.
pub static FULL: AtomicBool = AtomicBool::new(false);

/// The narrowest a column gets before the table overflows instead.
const MIN_COLUMN: usize = 12;

/// The width tables must fit: the terminal's (`COLUMNS` if set), or none (a pipe, `--full`).
fn terminal_width() -> Option<usize> {
    if FULL.load(Ordering::Relaxed) || !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(cols) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|c| *c > 0) {
        return Some(cols);
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct it is given.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Renders rows under headers, fitting the terminal when there is one.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    render_within(headers, rows, terminal_width())
}

/// `text` in at most `width` characters: its start and end with `…` between, more of the
/// end (a path's file name).
fn cut_middle(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width || width < 2 {
        return text.to_string();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// Renders rows under headers in at most `max` characters a line, when given.
fn render_within(headers: &[&str], rows: &[Vec<String>], max: Option<usize>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A line: a space before each cell, two after each but the last.
    let line_width = |widths: &[usize]| widths.iter().sum::<usize>() + 3 * widths.len() - 2;
    if let Some(max) = max {
        // Narrow the widest column, one character at a time, down to its floor.
        let floor: Vec<usize> = headers.iter().map(|h| h.chars().count().max(MIN_COLUMN)).collect();
        while line_width(&widths) > max {
            let Some(i) = (0..widths.len()).filter(|&i| widths[i] > floor[i]).max_by_key(|&i| widths[i]) else {
                break;
            };
            widths[i] -= 1;
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let cell = cut_middle(cell, *w);
            s.push(' ');
            s.push_str(&cell);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    let total: usize = widths.iter().sum::<usize>() + 3 * widths.len();
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Bytes in binary units, as `qemu-img info` prints them (`1 GiB`, `192 KiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{value} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_virsh() {
        let t = render(&["Id", "Name", "State"], &[vec!["1".into(), "web1".into(), "running".into()]]);
        assert_eq!(t, " Id   Name   State\n----------------------\n 1    web1   running\n");
        assert_eq!(human_size(1 << 30), "1 GiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(12), "12 B");
    }

    #[test]
    fn a_narrow_terminal_cuts_the_widest_cells_in_the_middle() {
        let rows = vec![vec!["vda".into(), "/srv/images/very/long/folder/name/web1-system.qcow2".into()]];
        let t = render_within(&["Target", "Source"], &rows, Some(40));
        let row = t.lines().nth(2).unwrap();
        assert_eq!(row, " vda      /srv/imag…me/web1-system.qcow2");
        assert_eq!(row.chars().count(), 40);
        // Wide enough, or no terminal: whole.
        assert_eq!(
            render_within(&["Target", "Source"], &rows, Some(200)),
            render_within(&["Target", "Source"], &rows, None)
        );
        assert_eq!(cut_middle("abcdefghij", 5), "a…hij");
    }
}
