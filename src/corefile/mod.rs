//! Reading a CoreDNS Corefile (the Caddyfile grammar) so that `gslbd import-corefile` can turn
//! the `elchi` and `zoneregistry` server blocks of a migrating user into our TOML.
//!
//! The grammar kept here is the part Corefiles use: server blocks (`KEYS { ... }`), one
//! directive per line with its arguments, nested blocks opened by `{` at the end of a line (or
//! alone on the next one), `#` comments and quoted tokens. `{$VAR}` placeholders are kept as
//! text: our config expands the same spelling. Every token keeps its line for messages.

pub mod import;

/// One word of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The text, quotes removed.
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// Written in quotes (so `"{"` is a word, not a brace).
    pub quoted: bool,
}

impl Token {
    fn is(&self, brace: &str) -> bool {
        !self.quoted && self.text == brace
    }
}

/// A directive with its arguments and, when it has one, its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name.
    pub name: Token,
    /// The arguments on its line.
    pub args: Vec<Token>,
    /// The directives inside its `{ }`, if any.
    pub block: Vec<Directive>,
}

/// A server block: its keys (zones with optional scheme and port) and its directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBlock {
    /// `gslb.example.org:53`, `.`, `dns://example.org`, ...
    pub keys: Vec<Token>,
    /// The plugins configured in it, in file order.
    pub directives: Vec<Directive>,
}

/// A syntax error with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits the text into tokens: whitespace separates, `#` starts a comment, `"..."` quotes
/// (with `\"` and `\\` escapes).
pub fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                line += 1;
                chars.next();
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' => {
                let start = line;
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(ParseError { line: start, message: "unterminated quoted string".into() }),
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"') | Some('\\')) => {
                            text.push(chars.next().expect("peeked"));
                        }
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            text.push(c);
                        }
                    }
                }
                out.push(Token { text, line: start, quoted: true });
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '"' {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push(Token { text, line, quoted: false });
            }
        }
    }
    Ok(out)
}

/// Parses a Corefile into its server blocks.
pub fn parse(text: &str) -> Result<Vec<ServerBlock>, ParseError> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let mut blocks = Vec::new();
    while pos < tokens.len() {
        let mut keys = Vec::new();
        while pos < tokens.len() && !tokens[pos].is("{") {
            if tokens[pos].is("}") {
                return Err(ParseError { line: tokens[pos].line, message: "unexpected }".into() });
            }
            // Keys may be separated by commas as well as spaces.
            for part in tokens[pos].text.split(',').filter(|p| !p.is_empty()) {
                keys.push(Token { text: part.to_string(), ..tokens[pos].clone() });
            }
            pos += 1;
        }
        let Some(open) = tokens.get(pos) else {
            let line = keys.last().map_or(1, |k: &Token| k.line);
            return Err(ParseError { line, message: "expected { after the server block keys".into() });
        };
        pos += 1;
        let directives = block(&tokens, &mut pos, open.line)?;
        blocks.push(ServerBlock { keys, directives });
    }
    Ok(blocks)
}

/// Reads directives up to the `}` that closes the block opened on line `opened`.
fn block(tokens: &[Token], pos: &mut usize, opened: usize) -> Result<Vec<Directive>, ParseError> {
    let mut out = Vec::new();
    loop {
        let Some(t) = tokens.get(*pos) else {
            return Err(ParseError { line: opened, message: "block is not closed (missing })".into() });
        };
        if t.is("}") {
            *pos += 1;
            return Ok(out);
        }
        if t.is("{") {
            return Err(ParseError { line: t.line, message: "unexpected {".into() });
        }
        let name = t.clone();
        *pos += 1;
        let mut args = Vec::new();
        while let Some(a) = tokens.get(*pos) {
            if a.line != name.line || a.is("{") || a.is("}") {
                break;
            }
            args.push(a.clone());
            *pos += 1;
        }
        // A block opens with `{` at the end of the line, or alone on the next one.
        let mut inner = Vec::new();
        if let Some(a) = tokens.get(*pos)
            && a.is("{")
        {
            *pos += 1;
            inner = block(tokens, pos, a.line)?;
        }
        out.push(Directive { name, args, block: inner });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_directives_and_nested_blocks() {
        let text = "# head\ngslb.example.org:53, other.org {\n  elchi {\n    endpoint \"http://x:1\" # c\n    regions a b\n  }\n  log\n}\n. {\n  zoneregistry z.org {\n    peer p1.z.org\n    {\n      ipv4 10.0.0.1\n    }\n  }\n}\n";
        let blocks = parse(text).unwrap();
        assert_eq!(blocks.len(), 2);
        let keys: Vec<&str> = blocks[0].keys.iter().map(|k| k.text.as_str()).collect();
        assert_eq!(keys, ["gslb.example.org:53", "other.org"]);
        let elchi = &blocks[0].directives[0];
        assert_eq!(elchi.name.text, "elchi");
        assert_eq!(elchi.block[0].args[0].text, "http://x:1");
        assert_eq!(elchi.block[1].args.len(), 2);
        assert_eq!(elchi.block[1].name.line, 5);
        assert_eq!(blocks[0].directives[1].name.text, "log");
        let peer = &blocks[1].directives[0].block[0];
        assert_eq!((peer.name.text.as_str(), peer.block[0].args[0].text.as_str()), ("peer", "10.0.0.1"));
        assert_eq!(peer.block[0].name.line, 13);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("a {\n b\n").unwrap_err().line, 1);
        assert_eq!(parse("a {\n}\n}\n").unwrap_err().line, 3);
        assert_eq!(parse("a {\n b \"x\n}\n").unwrap_err().line, 2);
    }
}
