//! Templates for `secrets inject`: text in which each `{{ kube-dc://… }}`
//! is replaced by the value the reference names, byte for byte.
//!
//! - Spaces (or tabs) inside the braces are optional: `{{kube-dc://p/s/k}}`
//!   and `{{ kube-dc://p/s/k }}` are the same reference.
//! - Braces that do not hold a reference (`{{ .Values.x }}` of a Helm
//!   chart, Jinja's `{{ var }}`) are left as they are.
//! - `\{{` writes `{{` and starts no reference: `\{{ kube-dc://p/s/k }}`
//!   renders as `{{ kube-dc://p/s/k }}`. Any other backslash is kept.
//! - A reference ends at the closing `}}` on the same line; a missing one,
//!   or a malformed reference, is an error naming its line and column
//!   (1-based, in characters).

use super::refs::Reference;

/// Where something is in a template: 1-based line and column (characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// The line.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What a template could not be read for, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Where.
    pub at: Place,
    /// What.
    pub message: String,
}

enum Piece {
    /// Bytes of the template, written as they are.
    Text(std::ops::Range<usize>),
    /// A reference and where it starts.
    Ref(Reference, Place),
}

/// A parsed template.
pub struct Template<'a> {
    src: &'a [u8],
    pieces: Vec<Piece>,
}

const OPEN: &[u8] = b"{{";
const CLOSE: &[u8] = b"}}";

impl<'a> Template<'a> {
    /// Reads every reference of `src`, or the first error.
    pub fn parse(src: &'a [u8]) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut text_start = 0;
        let mut i = 0;
        while let Some(found) = memchr::memmem::find(&src[i..], OPEN) {
            let open = i + found;
            // `\{{`: the backslash goes, the braces stay as text.
            if open > 0 && src[open - 1] == b'\\' {
                pieces.push(Piece::Text(text_start..open - 1));
                text_start = open;
                i = open + OPEN.len();
                continue;
            }
            let inner = skip_blanks(src, open + OPEN.len());
            if !src[inner..].starts_with(super::refs::SCHEME.as_bytes()) {
                i = open + 1;
                continue;
            }
            let end = src[inner..]
                .iter()
                .position(|b| matches!(b, b' ' | b'\t' | b'}' | b'\n' | b'\r'))
                .map_or(src.len(), |p| inner + p);
            let close = skip_blanks(src, end);
            let at = place(src, inner);
            if !src[close..].starts_with(CLOSE) {
                return Err(TemplateError {
                    at: place(src, open),
                    message: "a reference's {{ is not closed by }} on its line".into(),
                });
            }
            let text = std::str::from_utf8(&src[inner..end]).map_err(|_| TemplateError {
                at,
                message: "the reference is not UTF-8 text".into(),
            })?;
            let r = Reference::parse(text).map_err(|(offset, message)| TemplateError {
                at: Place {
                    line: at.line,
                    column: at.column + offset,
                },
                message,
            })?;
            pieces.push(Piece::Text(text_start..open));
            pieces.push(Piece::Ref(r, at));
            i = close + CLOSE.len();
            text_start = i;
        }
        pieces.push(Piece::Text(text_start..src.len()));
        Ok(Template { src, pieces })
    }

    /// Each reference and where it is, in order.
    pub fn references(&self) -> impl Iterator<Item = (&Reference, Place)> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Ref(r, at) => Some((r, *at)),
            Piece::Text(_) => None,
        })
    }

    /// The template with each reference replaced by `value(reference)`;
    /// the first error (naming the reference's place) stops it.
    pub fn render<'v, E>(
        &self,
        mut value: impl FnMut(&Reference) -> Result<&'v [u8], E>,
    ) -> Result<Vec<u8>, (Place, E)> {
        let mut out = Vec::with_capacity(self.src.len());
        for p in &self.pieces {
            match p {
                Piece::Text(r) => out.extend_from_slice(&self.src[r.clone()]),
                Piece::Ref(r, at) => out.extend_from_slice(value(r).map_err(|e| (*at, e))?),
            }
        }
        Ok(out)
    }
}

fn skip_blanks(src: &[u8], mut i: usize) -> usize {
    while i < src.len() && matches!(src[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// The 1-based line and column (in characters, or bytes where the line is
/// not UTF-8) of byte offset `at`.
fn place(src: &[u8], at: usize) -> Place {
    let before = &src[..at];
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let head = &before[line_start..];
    let column = std::str::from_utf8(head).map_or(head.len(), |s| s.chars().count()) + 1;
    Place { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> Result<String, String> {
        let t = Template::parse(src.as_bytes()).map_err(|e| format!("{}: {}", e.at, e.message))?;
        let out = t
            .render(|r| {
                Ok::<_, String>(if r.key == "PEM" {
                    b"-----BEGIN-----\nx\n-----END-----\n".as_slice()
                } else {
                    b"v\"1\\"
                })
            })
            .map_err(|(at, e)| format!("{at}: {e}"))?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn references_are_replaced_and_everything_else_kept() {
        assert_eq!(
            render("a={{kube-dc://p/s/K}} b={{ kube-dc://p/s/K }} c={{\tkube-dc://p/s@2/K  }}\n")
                .unwrap(),
            "a=v\"1\\ b=v\"1\\ c=v\"1\\\n"
        );
        assert_eq!(
            render("key: |\n{{ kube-dc://p/s/PEM }}tail").unwrap(),
            "key: |\n-----BEGIN-----\nx\n-----END-----\ntail"
        );
        assert_eq!(
            render("{{ .Values.x }} {{ var }} {{}} \\{{ kube-dc://p/s/K }} a\\b").unwrap(),
            "{{ .Values.x }} {{ var }} {{}} {{ kube-dc://p/s/K }} a\\b"
        );
        assert_eq!(render("").unwrap(), "");
        assert_eq!(render("no references\n").unwrap(), "no references\n");
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            render("ok\n  x={{ kube-dc://p/s }}\n").unwrap_err(),
            "2:8: \"kube-dc://p/s\" has 2 parts; a reference is kube-dc://PROJECT/SECRET/KEY or kube-dc://ORG/PROJECT/SECRET/KEY (a version as SECRET@N)"
        );
        let e = render("é{{ kube-dc://p/S/k }}").unwrap_err();
        assert!(e.starts_with("1:17: invalid secret name"), "{e}");
        let e = render("line\n{{ kube-dc://p/s/k\n}}").unwrap_err();
        assert!(e.starts_with("2:1: a reference's {{ is not closed"), "{e}");
    }
}
