//! `${VAR}` and `{$VAR}` expansion in the string values of a parsed TOML document.
//!
//! Expansion runs on parsed string values, not on the raw text, so comments and keys are never
//! touched and every value keeps the span (and so the line) it was written on.

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Reporter;

/// Expands environment references in every string value of `table`, recording an error for
/// each unset or malformed reference.
pub fn expand_table(
    table: &mut DeTable<'_>,
    path: &str,
    rep: &mut Reporter<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    for (key, value) in table.iter_mut() {
        let key_path = if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
        expand_value(value, &key_path, rep, lookup);
    }
}

fn expand_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    rep: &mut Reporter<'_>,
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand_str(s, lookup) {
            Ok(expanded) => {
                rep.expanded(s, &expanded);
                *s = expanded.into();
            }
            Err(message) => rep.at(span.start, path, message),
        },
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), rep, lookup);
            }
        }
        DeValue::Table(t) => expand_table(t, path, rep, lookup),
        _ => {}
    }
}

/// Expands `${VAR}` and `{$VAR}` in one string. `$$` stands for a literal `$`.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['$', '{']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (name, consumed) = if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            (&body[..end], end + 3)
        } else if let Some(body) = tail.strip_prefix("{$") {
            let end = body.find('}').ok_or_else(|| format!("unterminated {{$ in {s:?}"))?;
            (&body[..end], end + 3)
        } else if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
            continue;
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid environment variable name {name:?}"));
        }
        let value = lookup(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &tail[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "NODE").then(|| "10.0.0.1".to_string())
    }

    #[test]
    fn both_spellings_expand() {
        assert_eq!(expand_str("ip=${NODE}/{$NODE}", &env).unwrap(), "ip=10.0.0.1/10.0.0.1");
        assert_eq!(expand_str("cost $5 {x} $$", &env).unwrap(), "cost $5 {x} $");
    }

    #[test]
    fn unset_variable_is_named() {
        let err = expand_str("${MISSING_VAR}", &env).unwrap_err();
        assert!(err.contains("MISSING_VAR"), "{err}");
    }
}
