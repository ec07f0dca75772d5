//! "Did you mean …?" for misspelt field names.

/// The candidate closest to `name`, if any is close enough.
///
/// A candidate that differs only in case wins (the one with the fewest
/// case differences); otherwise the candidate with the smallest
/// case-insensitive edit distance, if that distance is at most a quarter of
/// the name's length (and at least 2 edits are always tolerated).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let limit = (name.chars().count() / 4).max(2);
    let mut best: Option<(usize, usize, &'a str)> = None;
    for candidate in candidates {
        let folded = distance(&lower, &candidate.to_lowercase());
        if folded > limit {
            continue;
        }
        let exact = distance(name, candidate);
        let better = match best {
            None => true,
            Some((bf, be, _)) => (folded, exact) < (bf, be),
        };
        if better {
            best = Some((folded, exact, candidate));
        }
    }
    best.map(|(_, _, c)| c)
}

/// Levenshtein distance between two strings, by characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur.fill(0);
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let delete = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let insert = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = substitute.min(delete).min(insert);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn case_difference_beats_edit_distance() {
        let names = ["sourceIPv4Address", "SourceIPv4Address", "sourceIPv6Address"];
        assert_eq!(closest("sourceipv4address", names), Some("sourceIPv4Address"));
        assert_eq!(closest("SourceIpv4Address", names), Some("SourceIPv4Address"));
    }

    #[test]
    fn far_names_get_no_suggestion() {
        assert_eq!(closest("bogus", ["octetDeltaCount", "vlanId"]), None);
    }
}
