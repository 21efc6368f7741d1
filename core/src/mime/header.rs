//! Header fields of one header block (RFC 5322 §2.2), raw.

/// One header field: its name (without trailing whitespace) and its raw
/// value (after the colon, folding line breaks still in, final line break
/// excluded).
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: &'a [u8],
}

impl Field<'_> {
    /// Whether the field is called `name` (ASCII case-insensitive).
    pub(super) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The value unfolded (every CR and LF removed, the whitespace that
    /// started each continuation line kept) and without leading whitespace.
    pub(super) fn unfolded(&self) -> Vec<u8> {
        unfold(self.value)
    }
}

/// Removes CR and LF and leading whitespace.
pub(super) fn unfold(value: &[u8]) -> Vec<u8> {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let start = unfolded
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(unfolded.len());
    unfolded[start..].to_vec()
}

/// Iterates over the fields of `block`, which holds header lines only (no
/// blank line). A line without a colon is a field whose whole line is the
/// name; a continuation line (starting with space or tab) belongs to the
/// field above it.
pub(super) fn fields(block: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= block.len() {
            return None;
        }
        let start = pos;
        // the field ends before the first line break not followed by WSP
        let mut end = block.len();
        let mut i = start;
        while let Some(off) = block[i..].iter().position(|&b| b == b'\n') {
            let lf = i + off;
            match block.get(lf + 1) {
                Some(b' ' | b'\t') => i = lf + 1,
                _ => {
                    end = lf + 1;
                    break;
                }
            }
        }
        pos = end;
        let field = trim_line_end(&block[start..end]);
        let first_line_len = field
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(field.len());
        Some(
            match field[..first_line_len].iter().position(|&b| b == b':') {
                Some(colon) => {
                    let name = trim_trailing_wsp(&field[..colon]);
                    let mut value = &field[colon + 1..];
                    // skip the whitespace after the colon on the first line
                    while let Some((b' ' | b'\t', rest)) = value.split_first() {
                        value = rest;
                    }
                    Field { name, value }
                }
                None => Field {
                    name: trim_trailing_wsp(trim_line_end(&field[..first_line_len])),
                    value: &field[first_line_len..],
                },
            },
        )
    })
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_trailing_wsp(mut s: &[u8]) -> &[u8] {
    while let Some((b' ' | b'\t', rest)) = s.split_last() {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        fields(block)
            .map(|f| (f.name.to_vec(), f.unfolded()))
            .collect()
    }

    #[test]
    fn splits_and_unfolds() {
        let got = collect(b"Subject: a\r\n\tb\r\nTo :  x@y\r\nbogus line\r\nX:\r\n  folded\r\n");
        assert_eq!(
            got,
            vec![
                (b"Subject".to_vec(), b"a\tb".to_vec()),
                (b"To".to_vec(), b"x@y".to_vec()),
                (b"bogus line".to_vec(), b"".to_vec()),
                (b"X".to_vec(), b"folded".to_vec()),
            ]
        );
    }

    #[test]
    fn last_line_without_newline() {
        let got = collect(b"A: 1\nB: 2");
        assert_eq!(
            got,
            vec![
                (b"A".to_vec(), b"1".to_vec()),
                (b"B".to_vec(), b"2".to_vec())
            ]
        );
    }
}
