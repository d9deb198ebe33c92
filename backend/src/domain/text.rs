//! What counts as visible text, for titles and tags.

// Request schemas carry the text rules as OpenAPI (ECMA-262) patterns too, so that generated
// clients and fuzzers know them: no NUL anywhere, and a title needs one visible character, one
// outside the class in `TITLE_PATTERN` (the same set as `is_invisible`; a unit test holds the
// two together).

/// The OpenAPI pattern of a title: no NUL, and at least one character that is not invisible.
/// utoipa takes patterns only as literals, so the schemas repeat it; tests hold them to this.
#[cfg(test)]
pub(super) const TITLE_PATTERN: &str = r"^[^\u0000]*[^\u0000-\u0020\u007F-\u00A0\u00AD\u034F\u061C\u115F\u1160\u1680\u17B4\u17B5\u180B-\u180F\u2000-\u200F\u2028-\u202F\u205F-\u206F\u2800\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0][^\u0000]*$";

/// Characters a reader cannot see: white space, controls, and the format characters,
/// joiners, fillers and variation selectors that render as nothing. A title made only of
/// these would show as an empty line, so it is refused like a blank one.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{0020}'
        | '\u{007F}'..='\u{00A0}'
        | '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{1680}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{2000}'..='\u{200F}'
        | '\u{2028}'..='\u{202F}'
        | '\u{205F}'..='\u{206F}'
        | '\u{2800}'
        | '\u{3000}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_pattern_names_exactly_the_invisible_characters() {
        // Parse the pattern's middle class back into ranges and compare with `is_invisible`
        // over the whole Basic Multilingual Plane, where the pattern is written.
        let class = TITLE_PATTERN
            .split("[^")
            .nth(2)
            .and_then(|rest| rest.split(']').next())
            .expect("the pattern has a middle class");
        let points: Vec<u32> = class
            .split("\\u")
            .filter(|part| !part.is_empty())
            .map(|part| u32::from_str_radix(part.trim_end_matches('-'), 16).expect("hex"))
            .collect();
        let mut ranges = Vec::new();
        let mut parts = class
            .split("\\u")
            .filter(|part| !part.is_empty())
            .zip(points);
        while let Some((part, start)) = parts.next() {
            let end = if part.ends_with('-') {
                parts.next().expect("a range has an end").1
            } else {
                start
            };
            ranges.push(start..=end);
        }
        for code in 0..=0xFFFF_u32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let in_pattern = ranges.iter().any(|range| range.contains(&code));
            assert_eq!(in_pattern, is_invisible(c), "U+{code:04X}");
        }
    }
}
