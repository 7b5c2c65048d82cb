//! The module import graph of the three crates has no circle, no file
//! imports with a glob outside its tests, and each crate root only names
//! its modules and what the crate hands on: a reader sees from a file's
//! imports what it depends on.
//!
//! Read from the source text, whole files: every `crate::a::b` and
//! `super::a` path (in `use` lines and inline) is an edge from its file to
//! the file of the longest module it names; in a file's `#[cfg(test)]`
//! part, `super::` is the file's own module. A path to one's own ancestor
//! folder (`super::Thing` in `store/secrets.rs` naming `store/mod.rs`) is
//! containment, not an import, and is not an edge — but the crate root is
//! a module like any other: `crate::Backend` from `http/` is an edge to
//! `lib.rs`, so a root that both imports its modules and is imported by
//! them shows as the circle it is. A binary's `main.rs` is a crate of its
//! own that uses the library by name, and is not read.

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
            match parts.last().map(String::as_str) {
                Some("main") if parts.len() == 1 => continue,
                Some("mod" | "lib") => {
                    parts.pop();
                }
                _ => {}
            }
            out.insert(parts, p);
        }
    }
    out
}

/// The file's text before and from its first `#[cfg(test)]`.
fn split_tests(text: &str) -> (&str, &str) {
    text.split_at(text.find("#[cfg(test)]").unwrap_or(text.len()))
}

/// What a crate root (`[]`) holds besides `mod` declarations and `pub use`
/// (docs, comments and attributes aside), before its tests.
fn root_code(text: &str) -> Vec<String> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        let declares = l.is_empty()
            || l.starts_with("//")
            || l.starts_with("#[")
            || l.starts_with("#![")
            || (l.starts_with("mod ") || l.starts_with("pub mod ")) && l.ends_with(';')
            || l.starts_with("pub use ");
        if depth == 0 && !declares {
            out.push(l.to_string());
        }
        // A multi-line `pub use a::{…};` continues until its `;`.
        depth += l.matches('{').count();
        depth = depth.saturating_sub(l.matches('}').count());
    }
    out
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
    // `a::{b, c::d}`: each item of a group, one level deep.
    let items = |rest: &str| -> Vec<Vec<String>> {
        let Some(group) = rest.strip_prefix('{') else {
            return vec![idents(rest)];
        };
        let mut depth = 0;
        let end = group
            .find(|c| {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => return true,
                    '}' => depth -= 1,
                    _ => {}
                }
                false
            })
            .unwrap_or(group.len());
        group[..end]
            .split(',')
            .map(|item| idents(item.trim_start()))
            .filter(|p| !p.is_empty())
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `kube_dc_api::…crate::` is not ours
        }
        out.extend(items(&text[i + "crate::".len()..]));
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
        for item in items(rest) {
            let mut path = base.clone();
            path.extend(item);
            out.push(path);
        }
    }
    out
}

/// What is wrong with one crate's `src/`: circles, glob imports, and a
/// crate root that holds code or that modules import through.
struct Findings {
    circles: Vec<String>,
    globs: Vec<String>,
    root: Vec<String>,
}

fn check(src: &Path) -> Findings {
    let mods = modules(src);
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    let mut globs = Vec::new();
    let mut root = Vec::new();
    for (me, file) in &mods {
        // This file's made-up trees are string literals, not imports.
        if file.ends_with("structure_test.rs") {
            continue;
        }
        let whole = std::fs::read_to_string(file).unwrap();
        let (text, tests) = split_tests(&whole);
        if me.is_empty() {
            root.extend(
                root_code(text)
                    .into_iter()
                    .map(|l| format!("{}: {l}", file.display())),
            );
        }
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
        // In the tests part, `super::` is the file's own module.
        let mut in_tests = me.clone();
        in_tests.push("tests".into());
        let paths = named(text, me).into_iter().chain(named(tests, &in_tests));
        for mut path in paths {
            // The longest prefix that is a module file.
            while !path.is_empty() && !mods.contains_key(&path) {
                path.pop();
            }
            let Some(target) = mods.get(&path) else {
                continue;
            };
            // Oneself or one's ancestor folders: containment, not an
            // import. The crate root is no one's folder: a module that
            // names it imports through its re-exports, an arrow back up.
            if path.is_empty() && !me.is_empty() {
                root.push(format!(
                    "{} imports through the crate root; name the module that defines it",
                    file.display()
                ));
            } else if me.starts_with(&path) {
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
    Findings {
        circles,
        globs,
        root,
    }
}

#[test]
fn no_import_circles_no_glob_imports_and_bare_crate_roots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut circles, mut globs, mut code) = (Vec::new(), Vec::new(), Vec::new());
    for src in ["src", "backend/src", "api/src"] {
        let f = check(&root.join(src));
        circles.extend(f.circles);
        globs.extend(f.globs);
        code.extend(f.root);
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    assert!(globs.is_empty(), "glob imports:\n{}", globs.join("\n"));
    assert!(
        code.is_empty(),
        "a crate root holds only `mod` and `pub use`, for other crates:\n{}",
        code.join("\n")
    );
}

#[test]
fn the_check_sees_a_circle_and_a_glob() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w("lib.rs", "mod a;\nmod b;\n");
    w("a.rs", "use crate::b::B;\npub struct A;\n");
    w(
        "b.rs",
        "use super::a::*;\npub struct B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    let f = check(dir.path());
    assert_eq!(f.circles.len(), 1, "{:?}", f.circles);
    assert_eq!(
        f.globs.len(),
        1,
        "the tests' glob is allowed: {:?}",
        f.globs
    );
    assert!(f.root.is_empty(), "{:?}", f.root);
}

#[test]
fn the_check_sees_a_crate_root_hub() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    // The root imports a module that imports the root back: once hidden
    // as "containment", now a circle, and the root's own code is named.
    w(
        "lib.rs",
        "//! A hub.\npub mod http;\npub use http::Router;\npub struct Backend;\nimpl Backend {\n    pub fn router(&self) -> crate::http::Router { crate::http::router() }\n}\n",
    );
    w(
        "http.rs",
        "use crate::Backend;\npub struct Router;\npub fn router() -> Router { let _ = Backend; Router }\n",
    );
    let f = check(dir.path());
    assert_eq!(f.circles.len(), 1, "{:?}", f.circles);
    let lib = dir.path().join("lib.rs");
    let http = dir.path().join("http.rs");
    assert_eq!(
        f.root,
        [
            format!("{}: pub struct Backend;", lib.display()),
            format!("{}: impl Backend {{", lib.display()),
            format!(
                "{} imports through the crate root; name the module that defines it",
                http.display()
            ),
        ]
    );
    // A group import names each of its modules, not the root.
    std::fs::remove_file(&http).unwrap();
    w("lib.rs", "pub mod a;\npub mod b;\n");
    w("a.rs", "use crate::{b, b::B};\n");
    w("b.rs", "pub struct B;\n");
    let f = check(dir.path());
    assert!(f.root.is_empty() && f.circles.is_empty(), "{:?}", f.root);
    // A test module's imports are edges too: a test importing a module
    // that imports the file is a circle.
    w("lib.rs", "pub mod a;\npub mod b;\n");
    w(
        "a.rs",
        "use crate::b::B;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    w(
        "b.rs",
        "pub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
    );
    assert_eq!(check(dir.path()).circles.len(), 1);
}
