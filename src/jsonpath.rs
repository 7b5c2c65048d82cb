//! `-o jsonpath=TEMPLATE`: kubectl's template subset over a command's JSON
//! document — text, `{.field.sub}`, indexes `{.items[0]}` and `{.items[*]}`,
//! quoted text `{"\n"}`, and `{range .items[*]}…{end}`. Several results of
//! one expression are joined with spaces; strings print as they are, other
//! values as JSON. A field that is not there is an error naming it.

use serde_json::Value;

use crate::error::{CliError, Result};

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// The steps, and the text they came from (for errors).
    Path(Vec<Step>, String),
    Range(Vec<Step>, String, Vec<Node>),
}

fn bad(template: &str, why: &str) -> CliError {
    CliError::usage(format!("-o jsonpath={template}: {why}"))
        .hint("e.g. -o jsonpath='{.items[*].name}' or '{range .items[*]}{.name}{\"\\n\"}{end}'")
}

/// Parses a template once; [`render`] applies it.
fn parse(template: &str) -> Result<Vec<Node>> {
    let mut stack: Vec<(Vec<Step>, String, Vec<Node>)> = Vec::new();
    let mut nodes = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(open) = rest.find('{') else {
            nodes.push(Node::Text(rest.to_string()));
            break;
        };
        if open > 0 {
            nodes.push(Node::Text(rest[..open].to_string()));
        }
        let inner_start = open + 1;
        let close = matching_brace(&rest[inner_start..])
            .map(|c| inner_start + c)
            .ok_or_else(|| bad(template, "a `{` is never closed"))?;
        let inner = rest[inner_start..close].trim();
        rest = &rest[close + 1..];
        if let Some(q) = inner.strip_prefix('"') {
            let text = q
                .strip_suffix('"')
                .ok_or_else(|| bad(template, "a quoted text is not closed"))?;
            nodes.push(Node::Text(unescape(text)));
        } else if let Some(p) = inner.strip_prefix("range ") {
            let p = p.trim();
            stack.push((
                path(template, p)?,
                p.to_string(),
                std::mem::take(&mut nodes),
            ));
        } else if inner == "end" {
            let (p, text, outer) = stack
                .pop()
                .ok_or_else(|| bad(template, "`{end}` without `{range …}`"))?;
            let body = std::mem::replace(&mut nodes, outer);
            nodes.push(Node::Range(p, text, body));
        } else {
            nodes.push(Node::Path(path(template, inner)?, inner.to_string()));
        }
    }
    if !stack.is_empty() {
        return Err(bad(template, "`{range …}` without `{end}`"));
    }
    Ok(nodes)
}

fn matching_brace(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\\"", "\"")
}

fn path(template: &str, text: &str) -> Result<Vec<Step>> {
    let mut t = text.strip_prefix('$').unwrap_or(text);
    let mut steps = Vec::new();
    while !t.is_empty() {
        if let Some(r) = t.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                steps.push(Step::Field(r[..end].to_string()));
            }
            t = &r[end..];
        } else if let Some(r) = t.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| bad(template, "a `[` is never closed"))?;
            let idx = r[..end].trim();
            steps.push(match idx {
                "*" => Step::All,
                n => Step::Index(n.parse().map_err(|_| {
                    bad(template, &format!("[{n}] is not an index (a number, or *)"))
                })?),
            });
            t = &r[end + 1..];
        } else {
            return Err(bad(
                template,
                &format!("{text:?} is not a path (start it with `.`)"),
            ));
        }
    }
    Ok(steps)
}

fn eval<'v>(v: &'v Value, steps: &[Step], shown: &str) -> Result<Vec<&'v Value>> {
    let mut cur = vec![v];
    for s in steps {
        let mut next = Vec::new();
        for c in cur {
            match (s, c) {
                (Step::Field(f), Value::Object(m)) => next.push(m.get(f).ok_or_else(|| {
                    CliError::usage(format!("jsonpath: {shown}: {f} is not found"))
                })?),
                (Step::Index(i), Value::Array(a)) => {
                    let at = if *i < 0 { a.len() as i64 + i } else { *i };
                    next.push(a.get(at as usize).ok_or_else(|| {
                        CliError::usage(format!("jsonpath: {shown}: index {i} is out of range"))
                    })?);
                }
                (Step::All, Value::Array(a)) => next.extend(a.iter()),
                (Step::All, Value::Object(m)) => next.extend(m.values()),
                _ => {
                    return Err(CliError::usage(format!(
                        "jsonpath: {shown}: cannot step into a {}",
                        match c {
                            Value::Null => "null",
                            Value::Bool(_) => "boolean",
                            Value::Number(_) => "number",
                            Value::String(_) => "string",
                            Value::Array(_) => "list (use [N] or [*])",
                            Value::Object(_) => "object (use .field)",
                        }
                    )));
                }
            }
        }
        cur = next;
    }
    Ok(cur)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_nodes(nodes: &[Node], v: &Value, out: &mut String) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Path(p, shown) => {
                let found = eval(v, p, shown)?;
                out.push_str(
                    &found
                        .iter()
                        .map(|x| text_of(x))
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            Node::Range(p, shown, body) => {
                for item in eval(v, p, shown)? {
                    render_nodes(body, item, out)?;
                }
            }
        }
    }
    Ok(())
}

/// The template applied to `v`.
pub fn render(template: &str, v: &Value) -> Result<String> {
    let nodes = parse(template)?;
    let mut out = String::new();
    render_nodes(&nodes, v, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_templates() {
        let v = json!({"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}], "kind": "List"});
        assert_eq!(render("{.kind}", &v).unwrap(), "List");
        assert_eq!(render("{.items[*].name}", &v).unwrap(), "a b");
        assert_eq!(render("{.items[1].n}", &v).unwrap(), "2");
        assert_eq!(render("{.items[-1].name}", &v).unwrap(), "b");
        assert_eq!(
            render("{range .items[*]}{.name}={.n}{\"\\n\"}{end}", &v).unwrap(),
            "a=1\nb=2\n"
        );
        assert_eq!(render("kind: {$.kind}!", &v).unwrap(), "kind: List!");
        assert_eq!(render("{.items[0]}", &v).unwrap(), r#"{"n":1,"name":"a"}"#);
        assert!(
            render("{.nope}", &v)
                .unwrap_err()
                .message
                .contains("nope is not found")
        );
        assert!(render("{.items[x]}", &v).is_err());
        assert!(render("{range .items[*]}{.name}", &v).is_err());
        assert!(render("{.kind", &v).is_err());
    }
}
