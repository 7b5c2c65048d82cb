//! The module import graph of the three crates has no circle, and no file
//! imports with a glob outside its tests: a reader sees from a file's
//! imports what it depends on.
//!
//! Read from the source text: every `crate::a::b` and `super::a` path (in
//! `use` lines and inline) outside `#[cfg(test)]` is an edge from its file
//! to the file of the longest module it names. A path to one's own ancestor
//! (`super::Thing` in `store/secrets.rs` naming `store/mod.rs`) is
//! containment, not an import, and is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path (`["store", "secrets"]`) → file, for one crate's `src/`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap();
            let mut parts: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            out.insert(parts, p);
        }
    }
    out
}

/// The text before the file's first `#[cfg(test)]`.
fn shipped(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

/// Module paths a file's text names: `crate::…` absolute, `super::…`
/// relative to the file's module `me`.
fn named(text: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let idents = |rest: &str| -> Vec<String> {
        let mut v = Vec::new();
        let mut r = rest;
        loop {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if end == 0 {
                break;
            }
            v.push(r[..end].to_string());
            match r[end..].strip_prefix("::") {
                Some(next) => r = next,
                None => break,
            }
        }
        v
    };
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `kube_dc_api::…crate::` is not ours
        }
        out.push(idents(&text[i + "crate::".len()..]));
    }
    for (i, _) in text.match_indices("super::") {
        if text[..i].ends_with("super::") {
            continue; // counted from the first `super::`
        }
        let mut base: Vec<String> = me.to_vec();
        let mut rest = &text[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        base.extend(idents(rest));
        out.push(base);
    }
    out
}

fn circles_in(src: &Path) -> (Vec<String>, Vec<String>) {
    let mods = modules(src);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut globs = Vec::new();
    for (me, file) in &mods {
        let text = std::fs::read_to_string(file).unwrap();
        let text = shipped(&text);
        for line in text.lines() {
            let l = line.trim_start();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            if l.starts_with("use ") && l.trim_end().ends_with("::*;") {
                globs.push(format!("{}: {}", file.display(), l.trim()));
            }
        }
        for mut path in named(text, me) {
            // The longest prefix that is a module file.
            while !path.is_empty() && !mods.contains_key(&path) {
                path.pop();
            }
            let Some(target) = mods.get(&path) else {
                continue;
            };
            // Oneself or one's ancestors: containment, not an import.
            if me.starts_with(&path) {
                continue;
            }
            edges
                .entry(file.clone())
                .or_default()
                .insert(target.clone());
        }
    }
    // Depth-first search for a back edge.
    let mut circles = Vec::new();
    let mut state: BTreeMap<&PathBuf, u8> = BTreeMap::new();
    fn visit<'a>(
        n: &'a PathBuf,
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        state: &mut BTreeMap<&'a PathBuf, u8>,
        stack: &mut Vec<&'a PathBuf>,
        circles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|x| *x == m).unwrap();
                    let names: Vec<String> = stack[at..]
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                    circles.push(format!("{} -> {}", names.join(" -> "), m.display()));
                }
                Some(_) => {}
                None => visit(m, edges, state, stack, circles),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    for n in edges.keys() {
        if !state.contains_key(n) {
            visit(n, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    (circles, globs)
}

#[test]
fn no_import_circles_and_no_glob_imports_of_our_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut circles = Vec::new();
    let mut globs = Vec::new();
    for src in ["src", "backend/src", "api/src"] {
        let (c, g) = circles_in(&root.join(src));
        circles.extend(c);
        globs.extend(g);
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    assert!(globs.is_empty(), "glob imports:\n{}", globs.join("\n"));
}

#[test]
fn the_check_sees_a_circle_and_a_glob() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w("lib.rs", "mod a;\nmod b;\n");
    w("a.rs", "use crate::b::B;\npub struct A;\n");
    w(
        "b.rs",
        "use super::a::*;\npub struct B;\n#[cfg(test)]\nuse crate::c::*;\n",
    );
    let (circles, globs) = circles_in(dir.path());
    assert_eq!(circles.len(), 1, "{circles:?}");
    assert_eq!(globs.len(), 1, "{globs:?}");
}
