//! Masking values in a stream (`secrets run`'s child output): every
//! occurrence of a value is replaced by [`MARKER`], also when the value
//! arrives split across reads. Bytes go out as soon as they cannot be the
//! start of a value; only a tail that could still become one is held
//! until the next read (or the end) decides.

use aho_corasick::{AhoCorasick, MatchKind};

/// What a masked value is replaced with.
pub const MARKER: &[u8] = b"<concealed by kube-dc>";

/// Values shorter than this are not masked: a one- to three-character
/// value (`1`, `yes`) would blank unrelated output. `secrets run` says
/// which keys it leaves unmasked.
pub const MIN_MASKED_LEN: usize = 4;

/// A streaming mask over a set of values.
#[derive(Clone)]
pub struct Masker {
    ac: AhoCorasick,
    patterns: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl Masker {
    /// A mask for `values`: each value, and each line of a multi-line
    /// value (a program may print a certificate line by line), of at least
    /// [`MIN_MASKED_LEN`] bytes. None when there is nothing to mask.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        for v in values {
            let lines = v.split('\n').map(|l| l.trim_end_matches('\r'));
            for p in std::iter::once(v).chain(lines) {
                if p.len() >= MIN_MASKED_LEN {
                    patterns.push(p.as_bytes().to_vec());
                }
            }
        }
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return None;
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok()?;
        Some(Self {
            ac,
            patterns,
            pending: Vec::new(),
        })
    }

    /// Takes the next bytes read; appends to `out` what can be written now.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.pending.extend_from_slice(chunk);
        let hold = self.pending.len() - self.partial_suffix();
        let done = self.mask_into(hold, out);
        self.pending.drain(..done);
    }

    /// The end of the stream: appends everything still held, masked.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let all = self.pending.len();
        let done = self.mask_into(all, out);
        self.pending.drain(..done);
        out.append(&mut self.pending);
    }

    /// Writes `pending[..limit]` masked into `out`, stopping before a
    /// value that reaches past `limit` (more bytes may make it a longer
    /// one); answers how many bytes of `pending` were consumed.
    fn mask_into(&self, limit: usize, out: &mut Vec<u8>) -> usize {
        let mut pos = 0;
        let mut stop = limit;
        for m in self.ac.find_iter(&self.pending) {
            if m.end() > limit {
                stop = stop.min(m.start());
                break;
            }
            out.extend_from_slice(&self.pending[pos..m.start()]);
            out.extend_from_slice(MARKER);
            pos = m.end();
        }
        let stop = stop.max(pos);
        out.extend_from_slice(&self.pending[pos..stop]);
        stop
    }

    /// The length of the longest end of `pending` that is the start of a
    /// value (but not a whole one): what must wait for more bytes.
    fn partial_suffix(&self) -> usize {
        let buf = &self.pending;
        let longest = self.patterns.iter().map(Vec::len).max().unwrap_or(0);
        (1..longest.min(buf.len() + 1))
            .rev()
            .find(|&n| {
                let tail = &buf[buf.len() - n..];
                self.patterns
                    .iter()
                    .any(|p| p.len() > n && p.starts_with(tail))
            })
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(values: &[&str], chunks: &[&str]) -> String {
        let mut m = Masker::new(values.iter().copied()).unwrap();
        let mut out = Vec::new();
        for c in chunks {
            m.push(c.as_bytes(), &mut out);
        }
        m.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_are_masked_whole_and_split_across_reads() {
        let c = "<concealed by kube-dc>";
        assert_eq!(masked(&["s3cr3t"], &["pw=s3cr3t\n"]), format!("pw={c}\n"));
        assert_eq!(
            masked(&["s3cr3t"], &["pw=s3c", "r3t\n"]),
            format!("pw={c}\n")
        );
        assert_eq!(
            masked(&["s3cr3t"], &["s", "3", "c", "r", "3", "t", "!"]),
            format!("{c}!")
        );
        assert_eq!(masked(&["s3cr3t"], &["s3cr3", "X"]), "s3cr3X");
        assert_eq!(masked(&["s3cr3t"], &["ends with s3c"]), "ends with s3c");
        // The longer of two values that start alike wins.
        assert_eq!(
            masked(&["abcd", "abcdef"], &["x abcd", "ef y abcd z"]),
            format!("x {c} y {c} z")
        );
        // Each line of a multi-line value too.
        assert_eq!(
            masked(
                &["-----BEGIN-----\nline2xyz\n-----END-----"],
                &["got line2xyz\n"]
            ),
            format!("got {c}\n")
        );
        // Too short to mask.
        assert!(Masker::new(["abc", ""]).is_none());
    }

    #[test]
    fn bytes_that_cannot_start_a_value_are_not_held() {
        let mut m = Masker::new(["password"]).unwrap();
        let mut out = Vec::new();
        m.push(b"prompt> ", &mut out);
        assert_eq!(out, b"prompt> ", "nothing held back");
        out.clear();
        m.push(b"pass", &mut out);
        assert!(out.is_empty(), "a value's start waits");
        m.push(b"port\n", &mut out);
        assert_eq!(out, b"passport\n");
    }
}
