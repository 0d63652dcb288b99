//! Where a JSON pointer's value sits in config.json's text. serde_json keeps no positions, so
//! the text (already parsed once, so known to be valid JSON) is walked again and each value's
//! byte range, and its key's, is recorded under its RFC 6901 pointer.

use std::collections::HashMap;
use std::ops::Range;

/// Byte ranges of every value (and object key) in a JSON text, by pointer.
#[derive(Debug, Default)]
pub struct Locator {
    values: HashMap<String, Range<usize>>,
    keys: HashMap<String, Range<usize>>,
}

/// A pointer's reference token: `~` and `/` escaped as RFC 6901 says.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

impl Locator {
    /// Positions for `text`; a text that is not JSON gives what could be read before the
    /// first error (diagnostics then fall back to an enclosing value).
    pub fn new(text: &str) -> Locator {
        let mut p = Parser {
            b: text.as_bytes(),
            text,
            i: 0,
            out: Locator::default(),
        };
        p.value(String::new());
        p.out
    }

    /// No text (a Spec converted from an in-memory document): every span is empty.
    pub fn empty() -> Locator {
        Locator::default()
    }

    /// The value at `ptr`, else that of its nearest enclosing value that has one.
    pub fn value(&self, ptr: &str) -> Range<usize> {
        let mut p = ptr;
        loop {
            if let Some(r) = self.values.get(p) {
                return r.clone();
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return 0..0,
            }
        }
    }

    /// The key naming the member at `ptr` (array items and the root: the value itself).
    pub fn key(&self, ptr: &str) -> Range<usize> {
        self.keys
            .get(ptr)
            .cloned()
            .unwrap_or_else(|| self.value(ptr))
    }
}

struct Parser<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    out: Locator,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// One value at `ptr`; `None` when the text stops being JSON.
    fn value(&mut self, ptr: String) -> Option<()> {
        self.ws();
        let start = self.i;
        match self.peek()? {
            b'{' => self.object(&ptr)?,
            b'[' => self.array(&ptr)?,
            b'"' => {
                self.string()?;
            }
            _ => {
                while self.peek().is_some_and(|c| {
                    !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.i += 1;
                }
            }
        }
        self.out.values.insert(ptr, start..self.i);
        Some(())
    }

    fn object(&mut self, ptr: &str) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            let kstart = self.i;
            let key = self.string()?;
            let kspan = kstart..self.i;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let child = format!("{ptr}/{}", escape(&key));
            self.out.keys.insert(child.clone(), kspan);
            self.value(child)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, ptr: &str) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        let mut n = 0usize;
        loop {
            self.value(format!("{ptr}/{n}"))?;
            n += 1;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string literal, decoded (keys may hold escapes).
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        serde_json::from_str(self.text.get(start..self.i)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_find_their_values_and_keys() {
        let t = "{\n  \"linux\": {\"resources\": {\"memory\": {\"limit\": 42}}},\n  \"a/b\": [1, \"x\\\"y\", {\"k\": null}]\n}";
        let l = Locator::new(t);
        let at = |r: Range<usize>| &t[r];
        assert_eq!(at(l.value("/linux/resources/memory/limit")), "42");
        assert_eq!(at(l.key("/linux/resources/memory/limit")), "\"limit\"");
        assert_eq!(at(l.value("/a~1b/1")), "\"x\\\"y\"");
        assert_eq!(at(l.value("/a~1b/2/k")), "null");
        // A pointer with no value of its own falls back to the nearest enclosing one.
        assert_eq!(
            at(l.value("/linux/resources/memory/swap")),
            "{\"limit\": 42}"
        );
        assert_eq!(l.value(""), 0..t.len());
    }
}
