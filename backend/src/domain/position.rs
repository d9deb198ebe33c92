//! Positions for the manual order: keys that sort as byte strings and between any two of which
//! another key can always be made, so that moving a task rewrites only that task.
//!
//! This is fractional indexing as David Greenspan described it ("Implementing Fractional
//! Indexing", 2020): a key is an integer part, whose first character says how many digits
//! follow, then an optional fraction. Appending after the last key increments the integer part,
//! which grows by one character only every 62ⁿ appends; placing between two keys takes the
//! midpoint of their fractions, which grows by about one character per six halvings of the
//! same gap. Digits are base 62 (`0-9A-Za-z`, in byte order).

use std::fmt;

const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The integer part of the smallest key, which nothing can precede.
const SMALLEST_INTEGER: &str = "A00000000000000000000000000";

/// A position key, as stored and sent: opaque to clients, compared as bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Position(String);

/// Why no key could be made: the bounds given are not valid keys, or not in order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid position bounds: {0}")]
pub struct PositionError(&'static str);

impl Position {
    /// The longest key a move may leave. Keys grow by about one character per six moves into
    /// the same gap, so ordinary use stays far below this; a client that keeps moving two
    /// tasks into one gap reaches it after a few hundred moves, and the owner's order is then
    /// re-keyed (short keys, same order). 64 characters keep a page of 100 tasks under 6.4 KB of
    /// keys, and leave hundreds of moves between two re-keys, each of which rewrites every key
    /// of the owner.
    pub const MAX_CHARS: usize = 64;

    /// Whether the key is longer than [`Position::MAX_CHARS`].
    pub fn is_too_long(&self) -> bool {
        self.0.len() > Self::MAX_CHARS
    }

    /// The first key of an empty list.
    pub fn first() -> Position {
        Position("a0".into())
    }

    /// A stored key, checked.
    pub fn parse(key: impl Into<String>) -> Result<Position, PositionError> {
        let key = key.into();
        validate(&key)?;
        Ok(Position(key))
    }

    /// A key that sorts after `before` (if any) and before `after` (if any).
    pub fn between(
        before: Option<&Position>,
        after: Option<&Position>,
    ) -> Result<Position, PositionError> {
        key_between(before.map(|p| p.0.as_str()), after.map(|p| p.0.as_str())).map(Position)
    }

    /// One of eight keys strictly between `before` and `after`, picked by the low three bits of
    /// `entropy`: for writers that lost the middle of a gap to each other, so that they do not
    /// all compute the same key again.
    pub fn somewhere_between(
        before: Option<&Position>,
        after: Option<&Position>,
        entropy: u8,
    ) -> Result<Position, PositionError> {
        let (mut low, mut high) = (before.cloned(), after.cloned());
        let mut middle = Position::between(low.as_ref(), high.as_ref())?;
        for bit in 0..3 {
            match entropy >> bit & 1 {
                0 => high = Some(middle),
                _ => low = Some(middle),
            }
            middle = Position::between(low.as_ref(), high.as_ref())?;
        }
        Ok(middle)
    }

    /// `self` with a fraction made of `entropy` appended, when `self` is a bare integer key:
    /// a key just above `self` that concurrent writers computing the same `self` are unlikely
    /// to share.
    pub fn spread(self, entropy: [u8; 3]) -> Position {
        let bare = split(&self.0).is_ok_and(|(_, fraction)| fraction.is_empty());
        if !bare {
            return self;
        }
        let mut key = self.0;
        for byte in entropy {
            key.push(DIGITS[usize::from(byte) % DIGITS.len()] as char);
        }
        // A fraction may not end in the zero digit.
        if key.ends_with('0') {
            key.pop();
            key.push('1');
        }
        Position(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn digit_value(byte: u8) -> Option<usize> {
    DIGITS.iter().position(|&d| d == byte)
}

/// The length of the integer part that starts with `head`: `a`–`z` for 2 to 27 characters,
/// `Z`–`A` for 2 to 27 characters below those.
fn integer_length(head: u8) -> Option<usize> {
    match head {
        b'a'..=b'z' => Some(usize::from(head - b'a') + 2),
        b'A'..=b'Z' => Some(usize::from(b'Z' - head) + 2),
        _ => None,
    }
}

fn split(key: &str) -> Result<(&str, &str), PositionError> {
    let head = *key.as_bytes().first().ok_or(PositionError("empty key"))?;
    let length = integer_length(head).ok_or(PositionError("bad head"))?;
    if key.len() < length {
        return Err(PositionError("short integer part"));
    }
    Ok(key.split_at(length))
}

fn validate(key: &str) -> Result<(), PositionError> {
    if key.starts_with(SMALLEST_INTEGER) {
        return Err(PositionError("below the smallest key"));
    }
    if !key.bytes().all(|b| digit_value(b).is_some()) {
        return Err(PositionError("not base 62"));
    }
    let (_, fraction) = split(key)?;
    if fraction.ends_with('0') {
        return Err(PositionError("trailing zero"));
    }
    Ok(())
}

/// A fraction strictly between `a` and `b` (`None`: no upper bound); neither may end in `0`.
fn midpoint(a: &str, b: Option<&str>) -> Result<String, PositionError> {
    if let Some(b) = b {
        if a >= b {
            return Err(PositionError("bounds out of order"));
        }
        // Shared leading digits (with `a` padded by zeros) are kept as they are.
        let a_bytes = a.as_bytes();
        let common = b
            .bytes()
            .enumerate()
            .take_while(|&(i, digit)| a_bytes.get(i).copied().unwrap_or(b'0') == digit)
            .count();
        if common > 0 {
            let rest_a = a.get(common..).unwrap_or("");
            let tail = midpoint(rest_a, Some(&b[common..]))?;
            return Ok(format!("{}{tail}", &b[..common]));
        }
    }
    let digit_a = a.bytes().next().map_or(Some(0), digit_value);
    let digit_b = match b {
        Some(b) => b.bytes().next().and_then(digit_value),
        None => Some(DIGITS.len()),
    };
    let (Some(digit_a), Some(digit_b)) = (digit_a, digit_b) else {
        return Err(PositionError("not base 62"));
    };
    if digit_b - digit_a > 1 {
        let middle = (digit_a + digit_b).div_ceil(2);
        return Ok((DIGITS[middle] as char).to_string());
    }
    // Adjacent digits: keep the lower one and go one place deeper.
    match b {
        Some(b) if b.len() > 1 => Ok(b[..1].to_owned()),
        _ => {
            let tail = midpoint(a.get(1..).unwrap_or(""), None)?;
            Ok(format!("{}{tail}", DIGITS[digit_a] as char))
        }
    }
}

fn increment_integer(integer: &str) -> Option<String> {
    let (head, digits) = integer.split_at(1);
    let mut digits: Vec<u8> = digits.bytes().collect();
    for digit in digits.iter_mut().rev() {
        let value = digit_value(*digit)?;
        if value + 1 < DIGITS.len() {
            *digit = DIGITS[value + 1];
            return Some(format!("{head}{}", String::from_utf8(digits).ok()?));
        }
        *digit = b'0';
    }
    // Every digit carried over: the next length up.
    let head = head.as_bytes()[0];
    match head {
        b'Z' => Some("a0".into()),
        b'z' => None,
        _ => {
            let next = head + 1;
            if next > b'a' {
                digits.push(b'0');
            } else {
                digits.pop();
            }
            Some(format!(
                "{}{}",
                next as char,
                String::from_utf8(digits).ok()?
            ))
        }
    }
}

fn decrement_integer(integer: &str) -> Option<String> {
    let (head, digits) = integer.split_at(1);
    let mut digits: Vec<u8> = digits.bytes().collect();
    for digit in digits.iter_mut().rev() {
        let value = digit_value(*digit)?;
        if value > 0 {
            *digit = DIGITS[value - 1];
            return Some(format!("{head}{}", String::from_utf8(digits).ok()?));
        }
        *digit = DIGITS[DIGITS.len() - 1];
    }
    let head = head.as_bytes()[0];
    match head {
        b'a' => Some(format!("Z{}", DIGITS[DIGITS.len() - 1] as char)),
        b'A' => None,
        _ => {
            let next = head - 1;
            if next < b'Z' {
                digits.push(DIGITS[DIGITS.len() - 1]);
            } else {
                digits.pop();
            }
            Some(format!(
                "{}{}",
                next as char,
                String::from_utf8(digits).ok()?
            ))
        }
    }
}

fn key_between(a: Option<&str>, b: Option<&str>) -> Result<String, PositionError> {
    if let Some(a) = a {
        validate(a)?;
    }
    if let Some(b) = b {
        validate(b)?;
    }
    match (a, b) {
        (None, None) => Ok("a0".into()),
        (None, Some(b)) => {
            let (integer, fraction) = split(b)?;
            if integer == SMALLEST_INTEGER {
                return Ok(format!("{integer}{}", midpoint("", Some(fraction))?));
            }
            if integer < b {
                return Ok(integer.to_owned());
            }
            decrement_integer(integer).ok_or(PositionError("no key below"))
        }
        (Some(a), None) => {
            let (integer, fraction) = split(a)?;
            match increment_integer(integer) {
                Some(next) => Ok(next),
                None => Ok(format!("{integer}{}", midpoint(fraction, None)?)),
            }
        }
        (Some(a), Some(b)) => {
            if a >= b {
                return Err(PositionError("bounds out of order"));
            }
            let (integer_a, fraction_a) = split(a)?;
            let (integer_b, fraction_b) = split(b)?;
            if integer_a == integer_b {
                return Ok(format!(
                    "{integer_a}{}",
                    midpoint(fraction_a, Some(fraction_b))?
                ));
            }
            let next = increment_integer(integer_a).ok_or(PositionError("no key above"))?;
            if next.as_str() < b {
                return Ok(next);
            }
            Ok(format!("{integer_a}{}", midpoint(fraction_a, None)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn between(a: Option<&str>, b: Option<&str>) -> String {
        key_between(a, b).expect("valid bounds")
    }

    #[test]
    fn somewhere_between_spreads_over_the_gap() {
        let low = Position::parse("a0").expect("key");
        let high = Position::parse("a1").expect("key");
        let mut keys: Vec<Position> = (0..8u8)
            .map(|entropy| {
                Position::somewhere_between(Some(&low), Some(&high), entropy).expect("a key")
            })
            .collect();
        assert!(keys.iter().all(|key| &low < key && key < &high), "{keys:?}");
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 8, "eight distinct keys");
        let open = Position::somewhere_between(None, Some(&low), 5).expect("a key");
        assert!(open < low);
    }

    #[test]
    fn known_keys() {
        assert_eq!(between(None, None), "a0");
        assert_eq!(between(Some("a0"), None), "a1");
        assert_eq!(between(Some("a1"), None), "a2");
        assert_eq!(between(None, Some("a0")), "Zz");
        assert_eq!(between(Some("a0"), Some("a1")), "a0V");
        assert_eq!(between(Some("az"), None), "b00");
        assert_eq!(between(Some("Zz"), None), "a0");
        assert_eq!(between(Some("a0V"), Some("a1")), "a0l");
    }

    #[test]
    fn invalid_bounds_are_errors() {
        for (a, b) in [
            (Some("a1"), Some("a0")),
            (Some("a0"), Some("a0")),
            (Some("a00"), None),
            (Some(""), None),
            (Some("a"), None),
            (Some("a0!"), None),
            (None, Some("A00000000000000000000000000")),
        ] {
            assert!(key_between(a, b).is_err(), "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_spread_key_stays_between_its_integer_and_the_next() {
        let base = Position::between(Some(&Position::first()), None).expect("after");
        let next = Position::between(Some(&base), None).expect("after");
        for entropy in [[0, 0, 0], [61, 61, 61], [1, 2, 3], [255, 128, 0]] {
            let spread = base.clone().spread(entropy);
            assert!(base < spread && spread < next, "{spread}");
            assert!(Position::parse(spread.as_str()).is_ok(), "{spread}");
        }
        let fractional = Position::parse("a0V").expect("valid");
        assert_eq!(fractional.clone().spread([1, 2, 3]), fractional);
    }

    #[test]
    fn appends_stay_short() {
        let mut last = Position::first();
        for _ in 0..10_000 {
            let next = Position::between(Some(&last), None).expect("after");
            assert!(next > last);
            last = next;
        }
        assert!(last.as_str().len() <= 4, "{last}");
    }

    /// Ten thousand random moves in a list of 200: the order always matches a reference list,
    /// and the keys stay short.
    #[test]
    fn random_moves_keep_the_order_and_short_keys() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut list: Vec<Position> = Vec::new();
        for _ in 0..200 {
            let next = Position::between(list.last(), None).expect("append");
            list.push(next);
        }
        let mut longest = 0;
        for _ in 0..10_000 {
            let from = rng.gen_range(0..list.len());
            let moved = list.remove(from);
            let to = rng.gen_range(0..=list.len());
            let before = to.checked_sub(1).map(|i| &list[i]);
            let key = Position::between(before, list.get(to)).expect("a key between");
            assert!(before.is_none_or(|b| *b < key) && list.get(to).is_none_or(|a| key < *a));
            // Moved back into its own gap, a task may get its old key again: still in order.
            let _ = moved;
            longest = longest.max(key.as_str().len());
            list.insert(to, key);
        }
        let mut sorted = list.clone();
        sorted.sort();
        assert_eq!(sorted, list, "byte order is the list's order");
        assert!(longest <= 12, "longest key after 10,000 moves: {longest}");
        eprintln!("longest position key after 10,000 random moves: {longest} characters");
    }
}
