//! The text both backends store beside what the client wrote: folded copies of the title and
//! the description, which search and the title sort compare, and the tag keys.

use crate::domain::query::fold;
use crate::domain::{Tag, TaskDescription, TaskTitle};

pub(super) fn title_key(title: &TaskTitle) -> String {
    fold(title.as_str())
}

pub(super) fn description_key(description: Option<&TaskDescription>) -> Option<String> {
    description.map(|d| fold(d.as_str()))
}

/// Search text as a LIKE pattern that matches it anywhere, with `%`, `_` and `\\` literal.
pub(super) fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(super) fn tag_keys(tags: &[Tag]) -> Vec<String> {
    tags.iter().map(Tag::key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }
}
