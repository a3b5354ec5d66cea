//! Stop strings over a real token stream and, as a property, over random texts cut at
//! random points.

use proptest::prelude::*;
use sis_engine::stop::MAX_STOP_BYTES;
use sis_engine::{
    load_gguf, Detokenizer, SamplerConfig, Serial, Session, SessionConfig, StopStrings,
};
use std::path::PathBuf;

/// Where the text ends: at the first point where it ends with a stop string, minus the
/// longest stop string ending there. `None` if no stop string occurs.
fn cut(text: &str, stops: &[String]) -> Option<usize> {
    let b = text.as_bytes();
    (1..=b.len()).find_map(|end| {
        stops
            .iter()
            .filter(|s| b[..end].ends_with(s.as_bytes()))
            .map(|s| end - s.len())
            .min()
    })
}

/// What may be released once `text` has arrived: everything before a match, else
/// everything before the first tail that is still the beginning of a stop string.
fn releasable(text: &str, stops: &[String]) -> usize {
    if let Some(c) = cut(text, stops) {
        return c;
    }
    let b = text.as_bytes();
    (0..b.len())
        .find(|&j| stops.iter().any(|s| s.as_bytes().starts_with(&b[j..])))
        .unwrap_or(b.len())
}

#[test]
fn stop_string_across_token_boundaries_in_a_generated_stream() {
    let file = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-llama.gguf"),
    )
    .unwrap();
    let (model, tok) = load_gguf(&file).unwrap();
    let prompt = tok.encode_prompt("Once upon a time, the little robot");
    let run = |stops: &[String]| {
        let mut s = Session::new(
            &model,
            &Serial,
            SessionConfig {
                context: 128,
                max_new_tokens: 40,
                sampler: SamplerConfig::GREEDY,
                stop_tokens: tok.stop.clone(),
            },
        )
        .unwrap();
        s.feed(&prompt).unwrap();
        let mut d = Detokenizer::new(&tok, prompt.last().copied());
        let mut st = StopStrings::new(stops).unwrap();
        let (mut out, mut pieces, mut n) = (String::new(), Vec::new(), 0);
        while let Some(t) = s.next_token().unwrap() {
            n += 1;
            let piece = d.push(t);
            pieces.push(piece.clone());
            let released = st.push(&piece);
            out += &released;
            // What was released is always a prefix that cannot start a stop string.
            assert!(stops.iter().all(|s| !out.contains(s.as_str())));
            if st.matched().is_some() {
                break;
            }
        }
        out += &st.push(&d.finish());
        out += &st.finish();
        (out, pieces, n, st.matched())
    };
    let (full, pieces, n, _) = run(&[]);
    assert_eq!(n, 40);
    // A stop string made of the end of one token's text and the start of the next one's,
    // whose first occurrence in the text is across that boundary.
    let stop = (1..pieces.len() - 1)
        .find_map(|k| {
            let (a, b) = (&pieces[k], &pieces[k + 1]);
            let tail: String = a
                .chars()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let head: String = b.chars().take(2).collect();
            let stop = format!("{tail}{head}");
            let at = pieces[..=k].concat().len() - tail.len();
            (!tail.is_empty()
                && !head.is_empty()
                && !stop.contains('\u{fffd}')
                && full.find(&stop) == Some(at))
            .then_some(stop)
        })
        .expect("some token boundary");
    let stops = vec![stop.clone(), "never in this text \u{1F600}".to_string()];
    let want = cut(&full, &stops).expect("the stop string occurs");
    let (out, _, n, matched) = run(&stops);
    assert_eq!(out, full[..want]);
    assert_eq!(matched, Some(0));
    // Generation ended at the token that completed the first occurrence.
    let completed = (1..=pieces.len())
        .find(|&k| pieces[..k].concat().contains(&stop))
        .unwrap();
    assert_eq!(n, completed);
}

fn text_and_stops() -> impl Strategy<Value = (String, Vec<String>, Vec<usize>)> {
    // A small alphabet (with multi-byte characters) makes matches and near-matches common.
    let ch = prop::sample::select(vec!['a', 'b', 'c', ' ', '\n', 'é', '日', '😀']);
    let text =
        prop::collection::vec(ch.clone(), 0..80).prop_map(|v| v.into_iter().collect::<String>());
    let stop = prop::collection::vec(ch, 1..6).prop_map(|v| v.into_iter().collect::<String>());
    (
        text,
        prop::collection::vec(stop, 0..=4),
        prop::collection::vec(0usize..1000, 0..20),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Streamed in chunks split at random character boundaries, the released text equals
    /// the text cut at the first stop string; after every chunk, everything that can no
    /// longer be part of a stop string has been released and nothing beyond the cut.
    #[test]
    fn streaming_equals_the_text_cut_at_the_first_stop((text, stops, splits) in text_and_stops()) {
        let mut bounds: Vec<usize> = splits
            .iter()
            .map(|&s| s % (text.len() + 1))
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        bounds.extend([0, text.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut st = StopStrings::new(&stops).unwrap();
        let mut out = String::new();
        let want = cut(&text, &stops);
        for w in bounds.windows(2) {
            out += &st.push(&text[w[0]..w[1]]);
            let got_so_far = &text[..w[1]];
            prop_assert_eq!(out.len(), releasable(got_so_far, &stops), "after {:?}", got_so_far);
            prop_assert!(text.starts_with(&out));
            prop_assert!(want.is_none_or(|c| out.len() <= c));
            prop_assert!(st.held().len() < MAX_STOP_BYTES);
        }
        out += &st.finish();
        prop_assert_eq!(&out[..], &text[..want.unwrap_or(text.len())]);
        prop_assert_eq!(st.matched().is_some(), want.is_some());
    }
}
