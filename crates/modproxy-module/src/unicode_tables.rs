//! The two pieces of Go's Unicode data that module rules depend on, taken
//! from Go's own `unicode` package (see `unicode_tables/gen.go`) rather than
//! approximated with Rust's `char` methods, whose categories differ:
//! `char::is_alphabetic` also accepts marks and letter-like numbers that
//! Go's `unicode.IsLetter` rejects, and Rust has no simple case folding.

#[path = "unicode_tables/data.rs"]
mod data;

/// Go's `unicode.IsLetter`.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let c = c as u32;
    data::LETTERS
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The rune `strToFold` (golang.org/x/mod/zip) puts for `c`: the smallest
/// rune of `c`'s `unicode.SimpleFold` orbit, except that `A`-`Z` become
/// `a`-`z`. Two runes are equal under Go's `strings.EqualFold` exactly when
/// they fold to the same rune.
pub(crate) fn fold_rune(c: char) -> char {
    let u = c as u32;
    let i = data::FOLDS.partition_point(|&(lo, _, _, _)| lo <= u);
    let Some(&(lo, hi, stride, delta)) = i.checked_sub(1).map(|i| &data::FOLDS[i]) else {
        return c;
    };
    if u > hi || !(u - lo).is_multiple_of(stride) {
        return c;
    }
    char::from_u32(u.wrapping_add_signed(delta)).unwrap_or(c)
}

/// Go's `strToFold`: `fold(s) == fold(t)` exactly when
/// `strings.EqualFold(s, t)`.
pub(crate) fn str_to_fold(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().map(fold_rune).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_go() {
        for c in ['a', 'Z', 'é', 'ж', 'ß', '中', 'ǅ', 'ª', '\u{10400}'] {
            assert!(is_letter(c), "{c:?}");
        }
        // Alphabetic for Rust but not letters for Go: a combining vowel
        // sign (Mn, Other_Alphabetic), Roman numeral twelve (Nl), circled
        // Latin capital A (So, Other_Alphabetic).
        for c in [
            '0',
            '_',
            ' ',
            '\u{93e}',
            'Ⅻ',
            'Ⓐ',
            '\u{345}',
            '☺',
            '\u{10ffff}',
        ] {
            assert!(!is_letter(c), "{c:?}");
        }
    }

    #[test]
    fn folds_follow_go() {
        let cases = [
            ('A', 'a'),
            ('a', 'a'),
            ('k', 'k'),
            ('\u{212a}', 'k'), // Kelvin sign
            ('\u{17f}', 's'),  // long s
            ('é', 'É'),
            ('É', 'É'),
            ('ā', 'Ā'),
            ('σ', 'Σ'),
            ('ς', 'Σ'),
            ('ß', 'ß'),
            ('ẞ', 'ß'),
            ('ǅ', 'Ǆ'),
            ('ǆ', 'Ǆ'),
            ('1', '1'),
            ('\u{10428}', '\u{10400}'),
        ];
        for (c, want) in cases {
            assert_eq!(fold_rune(c), want, "{c:?}");
        }
        assert_eq!(str_to_fold("a/b.go"), "a/b.go");
        assert_eq!(str_to_fold("A/B.Go"), "a/b.go");
        assert_eq!(str_to_fold("\u{212a}elvin"), str_to_fold("KELVIN"));
        assert_ne!(str_to_fold("ß"), str_to_fold("ss"));
    }
}
