//! The layering of the crate's top-level modules, checked on the source.
//!
//! Every `crate::…` path in `src/**/*.rs` (code only: comments, doc comments and string
//! literals are skipped, so a doc link may point upward) is an edge from the file's top-level
//! module to the module the path lands in. Names re-exported at the crate root
//! (`crate::spsc`, `crate::Error`…) are resolved through `lib.rs`. The graph must have no
//! cycle, and every edge must go down the table [`LAYERS`]: a lower layer never imports a
//! higher one.
//!
//! Limits: `super::` paths are not followed (write `crate::` to reach another top-level
//! module), and `src/bin/` is a separate crate that sees only the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules by layer. An edge `a -> b` needs `rank(b) < rank(a)`. A new top-level
/// module must be placed here (the test names it until it is).
const LAYERS: &[(&str, u32)] = &[
    // A leaf: everybody may report errors.
    ("error", 0),
    // The atomics shim, the futex, the wait strategies.
    ("sync", 1),
    // Who may attach: owner and credential checks (imports only error).
    ("trust", 1),
    // The lock-free algorithms over raw memory; may use sync's atomics.
    ("ring", 2),
    // Options of a shared-memory channel; may read the ring's limits.
    ("config", 3),
    // The Sender / Receiver traits, which shm and every transport implement.
    ("channel", 3),
    // The OS memory: shm_open, header, liveness locks, inspect.
    ("segment", 3),
    // The shared-memory channel halves.
    ("shm", 4),
    // The fallback transports.
    ("transport", 4),
    // URL parsing and listen/connect (and their async forms), above every channel kind.
    ("endpoint", 6),
    // Read-only inspection for the CLI and monitoring; its tests make real channels.
    ("inspect", 5),
    // Waiting on many shm halves (epoll over their doorbells).
    ("waitset", 5),
    // The async halves (feature `tokio`) over any half's readiness fd.
    ("tokio", 5),
    // The hidden entry module for fuzz targets, which may reach anything.
    ("fuzzing", 7),
    // The loom models' way in (only under --cfg shmring_loom).
    ("loom", 7),
];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Code of a Rust source with comments, string and char literals blanked out (replaced by
/// spaces, so that what is left cannot join into a false `crate::`).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(b, i) {
            // r"…", r#"…"#, br"…": ends at the quote followed by as many '#'.
            i = b[i..]
                .iter()
                .position(|&c| c == b'"')
                .map_or(b.len(), |p| i + p + 1);
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == b'\'' && is_char_literal(b, i) {
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            // Copy one whole UTF-8 character.
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        out.push(' ');
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// `Some(number of '#')` if a raw string literal starts at `i`.
fn raw_string_start(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident(b[i - 1]) {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    (b.get(j + hashes) == Some(&b'"')).then_some(hashes)
}

/// A `'` opens a char literal (`'x'`, `'\n'`, `'\u{1F600}'`, `'é'`), not a lifetime (`'a`).
fn is_char_literal(b: &[u8], i: usize) -> bool {
    match b.get(i + 1) {
        Some(b'\\') => true,
        Some(_) => {
            // One character (1 to 4 bytes) and then the closing quote.
            (2..=5).any(|n| {
                b.get(i + n) == Some(&b'\'')
                    && std::str::from_utf8(&b[i + 1..i + n]).is_ok_and(|s| s.chars().count() == 1)
            })
        }
        None => false,
    }
}

/// The first segment of every `crate::` path in `code` (`crate::a::b` and
/// `crate::{a::X, b}` give `a` and `b`; `$crate::` counts too).
fn crate_refs(code: &str) -> Vec<String> {
    let b = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("crate") {
        let at = from + p;
        from = at + 5;
        if at > 0 && is_ident(b[at - 1]) || b.get(at + 5).is_some_and(|&c| is_ident(c)) {
            continue;
        }
        let rest = code[at + 5..].trim_start();
        let Some(rest) = rest.strip_prefix("::") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Items at depth 1 of the group, up to its closing brace.
            let mut depth = 1;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if depth == 1 && item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.push(ident_at(&group[k..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident_at(rest));
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules declared in `lib.rs` and the crate-root names re-exported from them
/// (`pub use shm::spsc;` makes `crate::spsc` land in `shm`).
fn crate_root(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let code = code_only(lib);
    let mut modules = BTreeSet::new();
    let mut aliases = BTreeMap::new();
    for stmt in code.split(';') {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        // `mod x`, `pub mod x`, `pub(crate) mod x`, after any attributes.
        if let Some(k) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(k + 1) {
                modules.insert(name.to_string());
            }
        }
        if words.contains(&"use") {
            let path = stmt[stmt.find("use ").unwrap() + 4..].trim();
            let top = ident_at(path.trim_start_matches("self::"));
            // `a::b::{c, d}` or `a::b` or `a::b as c`: the names it brings to the root.
            let names: Vec<String> = match (path.find('{'), path.rfind('}')) {
                (Some(o), Some(c)) => path[o + 1..c].split(',').map(last_name).collect(),
                _ => vec![last_name(path)],
            };
            for n in names.into_iter().filter(|n| !n.is_empty() && n != "*") {
                aliases.insert(n, top.clone());
            }
        }
    }
    (modules, aliases)
}

/// The name `a::b` or `a::b as c` brings into scope: `b` or `c`.
fn last_name(item: &str) -> String {
    match item.split_once(" as ") {
        Some((_, alias)) => ident_at(alias.trim()),
        None => ident_at(item.rsplit("::").next().unwrap_or("").trim()),
    }
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module graph of the crate in `src`.
fn graph_of(src: &Path) -> Graph {
    let (modules, aliases) = crate_root(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut graph = Graph::new();
    let mut unknown = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        if first == "lib.rs" || first == "bin" {
            continue;
        }
        let from = first.trim_end_matches(".rs").to_owned();
        assert!(
            modules.contains(&from),
            "{}: not under a module declared in lib.rs",
            rel.display()
        );
        let deps = graph.entry(from.clone()).or_default();
        for name in crate_refs(&code_only(&fs::read_to_string(&file).unwrap())) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(m) = aliases.get(&name) {
                m.clone()
            } else {
                unknown.push(format!("{}: crate::{name}", rel.display()));
                continue;
            };
            if to != from {
                deps.insert(to);
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "paths into the crate root that are neither a module nor a re-export: {unknown:?}"
    );
    graph
}

/// A cycle of `graph`, as the path `a -> … -> a`, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        graph: &Graph,
        node: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(graph, n, &mut marks, &mut Vec::new()))
}

/// Edges that do not go down [`LAYERS`], and modules missing from it.
fn layer_violations(graph: &Graph) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().find(|(n, _)| *n == m).map(|(_, r)| *r);
    let mut bad = Vec::new();
    for (from, deps) in graph {
        let Some(rf) = rank(from) else {
            bad.push(format!("module `{from}` is not in LAYERS"));
            continue;
        };
        for to in deps {
            match rank(to) {
                None => bad.push(format!("module `{to}` is not in LAYERS")),
                Some(rt) if rt >= rf => {
                    bad.push(format!("`{from}` (layer {rf}) imports `{to}` (layer {rt})"))
                }
                Some(_) => {}
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

fn show(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, deps)| {
            format!(
                "  {m} -> {}",
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn crate_graph() -> Graph {
    graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = crate_graph();
    eprintln!("module graph:\n{}", show(&graph));
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle: {}\nmodule graph:\n{}",
            cycle.join(" -> "),
            show(&graph)
        );
    }
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let graph = crate_graph();
    let bad = layer_violations(&graph);
    assert!(
        bad.is_empty(),
        "layering broken:\n  {}\nmodule graph:\n{}",
        bad.join("\n  "),
        show(&graph)
    );
}

#[test]
fn the_scan_sees_the_edges_that_matter() {
    let graph = crate_graph();
    let has = |a: &str, b: &str| graph.get(a).is_some_and(|d| d.contains(b));
    // A sample of edges that exist for certain, so that a scan that finds nothing fails.
    assert!(has("endpoint", "transport"));
    assert!(has("endpoint", "shm"), "crate::spsc resolves to shm");
    assert!(has("shm", "channel"));
    assert!(has("transport", "channel"));
    assert!(has("config", "ring"));
    assert!(has("sync", "error"), "crate::Error resolves to error");
    // And those the layering forbids are absent.
    assert!(!has("channel", "transport"));
    assert!(!has("config", "shm"));
}

fn graph(edges: &[(&str, &str)]) -> Graph {
    let mut g = Graph::new();
    for (a, b) in edges {
        g.entry(a.to_string()).or_default().insert(b.to_string());
        g.entry(b.to_string()).or_default();
    }
    g
}

#[test]
fn finds_cycles_in_synthetic_graphs() {
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    // A cycle away from the first node, behind a diamond.
    assert_eq!(
        find_cycle(&graph(&[
            ("a", "b"),
            ("a", "c"),
            ("b", "d"),
            ("c", "d"),
            ("d", "e"),
            ("e", "d")
        ])),
        Some(vec!["d".into(), "e".into(), "d".into()])
    );
    // The cycles this crate had before `endpoint` existed, put back into today's graph.
    let mut g = crate_graph();
    g.get_mut("config").unwrap().insert("shm".into());
    let cycle = find_cycle(&g).expect("config -> shm -> config is a cycle");
    assert!(
        cycle.contains(&"config".into()) && cycle.contains(&"shm".into()),
        "{cycle:?}"
    );
    let mut g = crate_graph();
    g.get_mut("channel").unwrap().insert("transport".into());
    let cycle = find_cycle(&g).expect("channel -> transport -> channel is a cycle");
    assert!(cycle.contains(&"channel".into()), "{cycle:?}");
    assert!(layer_violations(&g)
        .iter()
        .any(|v| v.contains("`channel` (layer 3) imports `transport`")));
}

#[test]
fn reads_paths_not_comments_or_strings() {
    let src = r##"
        //! Links upward in docs are fine: [`crate::endpoint`].
        use crate::error::{Error, Result};
        use crate::{
            ring::mpmc::{self, MAX_PEERS},
            sync::Wait,
        };
        /* crate::hidden /* nested crate::hidden */ crate::hidden */
        fn f<'a>(s: &'a str) -> char {
            let _ = "crate::in_string";
            let _ = r#"crate::in_raw " string"#;
            let _ = crate::spsc::Sender::create;
            let _ = notcrate::x;
            let _ = $crate::config::Config::default();
            '"'
        }
        fn g() { crate :: shm::x(); }
    "##;
    let refs = crate_refs(&code_only(src));
    assert_eq!(refs, ["error", "ring", "sync", "spsc", "config", "shm"]);

    let (modules, aliases) = crate_root(
        "#[cfg(x)]\n#[doc(hidden)]\npub mod fuzzing;\nmod shm;\npub(crate) mod ring;\n\
         pub use shm::spsc;\npub use error::{Error, Result};\npub use sync::Wait as Waiting;",
    );
    assert_eq!(
        modules.into_iter().collect::<Vec<_>>(),
        ["fuzzing", "ring", "shm"]
    );
    assert_eq!(aliases["spsc"], "shm");
    assert_eq!(aliases["Error"], "error");
    assert_eq!(aliases["Result"], "error");
    assert_eq!(aliases["Waiting"], "sync");
}
