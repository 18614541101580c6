//! "Did you mean ...?" for names that are not found.

/// Names from `known` close to `wanted`: same ignoring case, a prefix or part of it, or within
/// a small edit distance. Best first, at most three.
pub fn close_names(wanted: &str, known: &[String]) -> Vec<String> {
    let w = wanted.to_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .filter_map(|k| {
            let kl = k.to_lowercase();
            let d = edit_distance(&w, &kl);
            let related = kl.contains(&w) || w.contains(&kl);
            (d <= limit || related).then_some((d, k))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, k)| k.clone()).collect()
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + (ca != *cb) as usize).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_best_first() {
        let known: Vec<String> = ["web1", "web2", "db", "webserver-prod"].iter().map(|s| s.to_string()).collect();
        assert_eq!(close_names("webl", &known), ["web1", "web2"]);
        assert_eq!(close_names("WEB1", &known), ["web1", "web2"]);
        assert_eq!(close_names("server", &known), ["webserver-prod"]);
        assert!(close_names("zzzzzz", &known).is_empty());
    }
}
