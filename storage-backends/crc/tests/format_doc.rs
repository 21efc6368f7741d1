//! FORMAT.md agrees with the code: its field tables are parsed and compared
//! with the layout tables the encoders use.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mailroom_store_crc::layout::{self, Field};

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/FORMAT.md")).unwrap()
}

/// The rows (name, offset, size) of the first table after `heading`.
fn table(doc: &str, heading: &str) -> Vec<(String, usize, usize)> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("FORMAT.md lacks the heading {heading:?}"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in doc[start..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with('|') {
            if in_table {
                break;
            }
            continue;
        }
        in_table = true;
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "field" || cells[0].starts_with("---") {
            continue;
        }
        let parse = |s: &str| {
            s.parse::<usize>()
                .unwrap_or_else(|_| panic!("bad number {s:?} in row {line:?}"))
        };
        rows.push((cells[0].to_owned(), parse(cells[1]), parse(cells[2])));
    }
    assert!(!rows.is_empty(), "empty table after {heading:?}");
    rows
}

fn same(doc_rows: &[(String, usize, usize)], code: &[Field], what: &str) {
    let code_rows: Vec<(String, usize, usize)> = code
        .iter()
        .map(|f| (f.name.to_owned(), f.offset, f.size))
        .collect();
    assert_eq!(
        doc_rows,
        code_rows.as_slice(),
        "FORMAT.md table {what} differs from layout.rs"
    );
}

#[test]
fn tables_match_layout() {
    let d = doc();
    same(
        &table(&d, "### Index header (128 bytes)"),
        layout::HEADER_V1,
        "header v1",
    );
    same(
        &table(&d, "### Index record (128 bytes)"),
        layout::RECORD_V1,
        "record v1",
    );
    same(
        &table(&d, "### Index header, version 0 (64 bytes)"),
        layout::v0::HEADER,
        "header v0",
    );
    same(
        &table(&d, "### Index record, version 0 (64 bytes)"),
        layout::v0::RECORD,
        "record v0",
    );
    assert_eq!(layout::HEADER_SIZE, 128);
    assert_eq!(layout::RECORD_SIZE, 128);
    assert_eq!(layout::v0::HEADER_SIZE, 64);
}

#[test]
fn version_and_magics_match() {
    let d = doc();
    assert!(d.contains(&format!(
        "The index format version is\n**{}**",
        layout::CURRENT_VERSION
    )));
    for magic in [
        layout::INDEX_MAGIC,
        layout::CACHE_MAGIC,
        layout::KEYWORDS_MAGIC,
        layout::SEEN_MAGIC,
    ] {
        let m = std::str::from_utf8(magic).unwrap();
        assert!(
            d.contains(&format!("`{m}`")),
            "FORMAT.md does not mention magic {m}"
        );
    }
    assert!(d.contains(&format!("{}-byte header", layout::CACHE_HEADER_SIZE)));
}
