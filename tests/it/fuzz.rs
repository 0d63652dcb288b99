//! Arbitrary input never panics, and every plan round-trips through JSON.

use launch::cli::plan_for;
use launch::manifest::Source;
use launch::plan::Plan;
use proptest::prelude::*;

use crate::common::{hybrid, manifests, v2};

fn check(text: &str) {
    let src = Source::from_text(
        "fuzz.toml",
        std::path::Path::new("/src/examples/manifests"),
        text,
    );
    for host in [hybrid(), v2()] {
        match plan_for(&src, &host) {
            Ok(plan) => {
                let back: Plan = serde_json::from_str(&plan.to_json()).unwrap();
                assert_eq!(back, plan);
            }
            Err(problems) => {
                assert!(!problems.is_empty());
                for p in &problems {
                    assert!(p.span.start <= p.span.end && p.span.end <= text.len());
                }
                let _ = launch::diag::render_text(&src, &problems, false, 80);
                let _ = launch::diag::render_json(&src, &problems);
            }
        }
    }
}

fn corpus() -> Vec<String> {
    let mut v: Vec<String> = manifests("examples/manifests")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    v.extend(
        manifests("examples/manifests/invalid")
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap()),
    );
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check(&text);
    }

    /// Mutations of real manifests reach deep into validation, not just the TOML parser.
    #[test]
    fn mutated_examples_never_panic(
        idx in 0usize..64,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, "[a-z0-9\"=\\[\\]{},.%-]{0,6}"), 1..4),
    ) {
        let c = corpus();
        let mut text = c[idx % c.len()].clone();
        for (at, kind, s) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) { pos -= 1; }
            match kind {
                0 => text.insert_str(pos, &s),
                1 => { let end = (pos + s.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(pos..end, ""); } }
                2 => { let end = (pos + s.len()).min(text.len()); if text.is_char_boundary(end) { text.replace_range(pos..end, &s); } }
                _ => text.insert(pos, '\n'),
            }
        }
        check(&text);
    }
}
