//! The layer rule, checked natively: every path a top-level module of `src/` names through
//! `crate::` (or through `super::` up to the crate root) points to a strictly lower layer, and no
//! import cycle exists among top-level modules. The layers, highest first:
//!
//! | rank | modules | may import |
//! |---|---|---|
//! | 6 | `lib` (and this test) | anything |
//! | 5 | `routes` (the composition root), `jobs` (cron) | programs and below |
//! | 4 | programs: affiliates, attributions, campaigns, conversions, links, marketplace, payouts, referrals, resellers, revenue, rewards, users | `http` and below; other programs while the program graph has no cycle |
//! | 3 | `http` (the platform) | `store`, `objects` and below — never a program |
//! | 2 | `store` (D1), `objects` (Durable Objects), `blobs` (R2) | rank 1 and `domain`; not each other |
//! | 1 | `config`, `log`, `ids`, `timing` | `domain` |
//! | 0 | `domain` (pure rules and records: no `worker`, no JS) | nothing |
//!
//! A new top-level module fails the test until it is ranked in `RANKS`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const PROGRAM: u8 = 4;

const RANKS: &[(&str, u8)] = &[
    ("domain", 0),
    ("config", 1),
    ("log", 1),
    ("ids", 1),
    ("timing", 1),
    ("store", 2),
    ("objects", 2),
    ("blobs", 2),
    ("http", 3),
    ("affiliates", PROGRAM),
    ("attributions", PROGRAM),
    ("campaigns", PROGRAM),
    ("conversions", PROGRAM),
    ("links", PROGRAM),
    ("marketplace", PROGRAM),
    ("payouts", PROGRAM),
    ("referrals", PROGRAM),
    ("resellers", PROGRAM),
    ("revenue", PROGRAM),
    ("rewards", PROGRAM),
    ("users", PROGRAM),
    ("routes", 5),
    ("jobs", 5),
    ("lib", 6),
    ("layers", 6),
];

/// Names `domain` must not use: it is pure, tested natively.
const PLATFORM_CRATES: &[&str] = &["worker", "wasm_bindgen", "js_sys", "web_sys"];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(name, _)| *name == module).map(|&(_, rank)| rank)
}

/// One top-level module naming another, and where.
#[derive(Clone, Debug, PartialEq)]
struct Import {
    from: String,
    to: String,
    at: String,
}

/// The code of a Rust source with comments and string and character literals blanked out
/// (newlines kept, so lines still count).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let ident = |i: usize| i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        let start = i;
        // A raw string `r"…"`, `r#"…"#`, `br#"…"#` (not a raw identifier `r#name`).
        let raw_hashes = (c == 'r' && (i == 0 || !ident(i - 1) || (chars[i - 1] == 'b' && (i < 2 || !ident(i - 2)))))
            .then(|| chars[i + 1..].iter().take_while(|&&h| h == '#').count())
            .filter(|&hashes| chars.get(i + 1 + hashes) == Some(&'"'));
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(chars.len());
        } else if let Some(hashes) = raw_hashes {
            i += hashes + 2;
            while i < chars.len() && !(chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'))) {
                i += 1;
            }
            i = (i + hashes + 1).min(chars.len());
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i = (i + 1).min(chars.len());
        } else if c == '\'' && next == Some('\\') {
            i += 3;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3;
        } else {
            out.push(c); // code, or the quote of a lifetime
            i += 1;
            continue;
        }
        out.extend(chars[start..i].iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// The tokens of code (see `code_only`) with their line numbers; numbers are skipped.
fn tokens(code: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = code.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if word(c) {
            let start = i;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            if !c.is_ascii_digit() {
                out.push((Token::Ident(chars[start..i].iter().collect()), line));
            }
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            out.push((Token::Path, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// How deep a file's own module sits: 0 for the crate root, 1 for `src/x.rs` and
/// `src/x/mod.rs`, 2 for `src/x/y.rs`, …
fn file_level(relative: &Path) -> usize {
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.last().map(String::as_str) {
        Some("lib.rs") if parts.len() == 1 => 0,
        Some("mod.rs") => parts.len() - 1,
        _ => parts.len(),
    }
}

/// The first segments of the paths that start at the crate root: `crate::x`, `$crate::x`,
/// `crate::{x, y::z}`, and `super::…::x` climbing up to the root from a module at `level`
/// (inline `mod name { … }` blocks add a level).
fn crate_paths(code: &str, level: usize) -> Vec<(String, usize)> {
    let toks = tokens(code);
    let ident = |k: usize| match toks.get(k) {
        Some((Token::Ident(name), _)) => Some(name.as_str()),
        _ => None,
    };
    let is = |k: usize, t: &Token| toks.get(k).is_some_and(|(tok, _)| tok == t);
    let mut found = Vec::new();
    // Brace depth, and the depths at which inline modules opened.
    let (mut depth, mut inline, mut opening_mod) = (0usize, Vec::new(), false);
    for k in 0..toks.len() {
        match &toks[k].0 {
            Token::Ident(name) if name == "mod" && ident(k + 1).is_some() && is(k + 2, &Token::Punct('{')) => opening_mod = true,
            Token::Punct('{') => {
                if std::mem::take(&mut opening_mod) {
                    inline.push(depth);
                }
                depth += 1;
            }
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if k > 0 && is(k - 1, &Token::Path) {
            continue; // not the start of a path
        }
        let root = match ident(k) {
            Some("crate") if is(k + 1, &Token::Path) => Some(k + 2),
            Some("super") => {
                let mut n = 0;
                while ident(k + 2 * n) == Some("super") && is(k + 2 * n + 1, &Token::Path) {
                    n += 1;
                }
                (n > 0 && n == level + inline.len()).then_some(k + 2 * n)
            }
            _ => None,
        };
        let Some(at) = root else { continue };
        if is(at, &Token::Punct('{')) {
            // A group: the first segment of each item.
            let (mut group_depth, mut item_start) = (0, true);
            for (tok, line) in &toks[at..] {
                match tok {
                    Token::Punct('{') => group_depth += 1,
                    Token::Punct('}') => group_depth -= 1,
                    Token::Punct(',') if group_depth == 1 => item_start = true,
                    Token::Ident(name) if group_depth == 1 && item_start => {
                        item_start = false;
                        if name != "self" {
                            found.push((name.clone(), *line));
                        }
                    }
                    _ => {}
                }
                if group_depth == 0 {
                    break;
                }
            }
        } else if let Some(name) = ident(at) {
            found.push((name.to_owned(), toks[at].1));
        }
    }
    found
}

/// Every violation of the layer rule among `modules` and their `imports`.
fn violations(modules: &BTreeSet<String>, imports: &[Import]) -> Vec<String> {
    let mut found = Vec::new();
    for module in modules {
        if rank(module).is_none() {
            found.push(format!("top-level module `{module}` has no rank: add it to RANKS in src/layers.rs"));
        }
    }
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in imports.iter().filter(|i| i.from != i.to) {
        graph.entry(&i.from).or_default().insert(&i.to);
        match (rank(&i.from), rank(&i.to)) {
            (Some(from), Some(to)) if to < from || (from == PROGRAM && to == PROGRAM) => {}
            (Some(from), Some(to)) => {
                found.push(format!("{}: `{}` (rank {from}) imports `{}` (rank {to})", i.at, i.from, i.to))
            }
            (_, None) => found.push(format!("{}: `crate::{}` is not a ranked top-level module", i.at, i.to)),
            (None, _) => {}
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        found.push(format!("import cycle: {}", cycle.join(" → ")));
    }
    found
}

/// A cycle of the graph, if it has one (first node repeated at the end).
fn find_cycle<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|&n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for &next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|&node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `dir`, as paths relative to `root`.
fn rust_files(root: &Path, dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(root).expect("under src/").to_path_buf());
        }
    }
}

#[test]
fn every_import_points_to_a_lower_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    files.sort();
    let (mut modules, mut imports, mut impure) = (BTreeSet::new(), Vec::new(), Vec::new());
    for file in &files {
        let top = file.iter().next().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).unwrap_or_default();
        let code = code_only(&std::fs::read_to_string(src.join(file)).expect("source is readable"));
        for (to, line) in crate_paths(&code, file_level(file)) {
            imports.push(Import { from: top.clone(), to, at: format!("src/{}:{line}", file.display()) });
        }
        if top == "domain" {
            let names = tokens(&code).into_iter().filter_map(|(token, line)| match token {
                Token::Ident(name) => Some((name, line)),
                _ => None,
            });
            for (name, line) in names.filter(|(name, _)| PLATFORM_CRATES.contains(&name.as_str())) {
                impure.push(format!("src/{}:{line}: domain uses `{name}`", file.display()));
            }
        }
        modules.insert(top);
    }
    assert!(modules.len() > 10 && imports.len() > 100, "the scan found too little: {modules:?}");
    let mut found = violations(&modules, &imports);
    found.extend(impure);
    assert!(found.is_empty(), "the layer rule is broken (see src/layers.rs):\n{}", found.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(text: &str, level: usize) -> Vec<String> {
        crate_paths(&code_only(text), level).into_iter().map(|(name, _)| name).collect()
    }

    #[test]
    fn every_form_of_a_crate_path_is_found() {
        let text = r##"
            use crate::a;
            use crate::{b, c::{x, y}, self};
            pub(crate) fn f() -> u8 { crate::d::g(); $crate::e::F; '{'; '\''; b'}'; 0 }
            // crate::comment
            /// crate::doc
            /* crate::block */
            const S: &str = "crate::string \" crate::escaped";
            const R: &str = r#"crate::raw "quoted""#;
            fn l<'a>(x: &'a str) -> &'a str { crate::h::i(x) }
        "##;
        assert_eq!(paths(text, 1), ["a", "b", "c", "d", "e", "h"]);
    }

    #[test]
    fn super_counts_when_it_climbs_to_the_crate_root() {
        // In src/x/y.rs (level 2): super::super is the crate root, super is x.
        assert_eq!(paths("use super::super::http::Ctx; use super::sibling;", 2), ["http"]);
        // In src/x.rs (level 1), inside `mod tests`: super is x, super::super the root.
        let text = "fn f() {} mod tests { use super::*; use super::super::store; } use super::jobs;";
        assert_eq!(paths(text, 1), ["store", "jobs"]);
    }

    #[test]
    fn upward_imports_unranked_modules_and_cycles_are_caught() {
        let import = |from: &str, to: &str| Import { from: from.into(), to: to.into(), at: "here".into() };
        let modules = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let fine = [import("http", "store"), import("affiliates", "payouts"), import("routes", "affiliates")];
        assert_eq!(violations(&modules(&["http", "store", "affiliates", "payouts", "routes"]), &fine), Vec::<String>::new());
        let up = violations(&modules(&["store", "http"]), &[import("store", "http")]);
        assert!(up[0].contains("`store` (rank 2) imports `http` (rank 3)"), "{up:?}");
        assert_eq!(violations(&modules(&["objects", "store"]), &[import("objects", "store")]).len(), 1);
        let cycle = violations(&modules(&["links", "affiliates"]), &[import("links", "affiliates"), import("affiliates", "links")]);
        assert_eq!(cycle, ["import cycle: affiliates → links → affiliates"]);
        let new = violations(&modules(&["badges"]), &[import("badges", "domain"), import("http", "args")]);
        assert!(new[0].contains("`badges` has no rank") && new[1].contains("`crate::args` is not a ranked"), "{new:?}");
    }
}
