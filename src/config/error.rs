//! Configuration errors that name the file, the line and the key.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path such as `zone[0].records` (empty for whole-file problems).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Maps byte offsets in a source text to 1-based line numbers and collects errors for it.
pub struct Reporter<'a> {
    file: &'a Path,
    text: &'a str,
    /// The errors so far.
    pub errors: Vec<ConfigError>,
    /// Values `${VAR}` expansion produced, with the text written in the file: errors show the
    /// latter, so a secret passed in the environment is never printed.
    expanded: Vec<(String, String)>,
}

impl<'a> Reporter<'a> {
    /// A reporter for `text`, read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Reporter<'a> {
        Reporter { file, text, errors: Vec::new(), expanded: Vec::new() }
    }

    /// The file being reported on.
    pub fn file(&self) -> &Path {
        self.file
    }

    /// The source text from byte `offset` on.
    pub fn source_at(&self, offset: usize) -> &str {
        self.text.get(offset..).unwrap_or("")
    }

    /// The 1-based line holding byte `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        line_of(self.text, offset)
    }

    /// Notes that the file's `written` value was expanded to `value`.
    pub fn expanded(&mut self, written: &str, value: &str) {
        if !value.is_empty() && value != written {
            self.expanded.push((value.to_string(), written.to_string()));
        }
    }

    /// The errors, each expanded value in them replaced by what the file says (`${VAR}`).
    pub fn into_errors(self) -> Vec<ConfigError> {
        let mut errors = self.errors;
        // Longest first, so a value holding another is replaced whole.
        let mut expanded = self.expanded;
        expanded.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        for e in &mut errors {
            for (value, written) in &expanded {
                e.message = e.message.replace(&format!("{value:?}"), &format!("{written:?}")).replace(value, written);
            }
        }
        errors
    }

    /// The last line that holds anything (where a missing table would be added).
    pub fn last_line(&self) -> usize {
        line_of(self.text, self.text.trim_end().len())
    }

    /// Records an error at a byte offset.
    pub fn at(&mut self, offset: usize, key: impl Into<String>, message: impl Into<String>) {
        let line = Some(self.line_of(offset));
        self.at_line(line, key, message);
    }

    /// Records an error at a known line.
    pub fn at_line(&mut self, line: Option<usize>, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError { file: self.file.to_path_buf(), line, key: key.into(), message: message.into() });
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count()
}
