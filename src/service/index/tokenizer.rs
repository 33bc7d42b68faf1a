//! The tokenizer of the full-text index: words of letters and digits, and
//! every CJK character (Han, kana, Hangul) as a token of its own, so text in
//! scripts without spaces is findable by any part of it (a query in those
//! scripts becomes a phrase of single characters). Lower-cased and
//! accent-folded, so `Café` finds `cafe`.

use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered with the index.
pub const NAME: &str = "natter";

/// The analyzer used for indexing and for queries.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(NatterTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Whether a character belongs to a script written without spaces.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FA1F  // CJK Extensions B..
    )
}

/// See the module documentation.
#[derive(Clone, Default)]
pub struct NatterTokenizer {
    token: Token,
}

/// The token stream of [`NatterTokenizer`].
pub struct NatterTokenStream<'a> {
    text: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    token: &'a mut Token,
}

impl Tokenizer for NatterTokenizer {
    type TokenStream<'a> = NatterTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> NatterTokenStream<'a> {
        self.token.reset();
        NatterTokenStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
        }
    }
}

impl NatterTokenStream<'_> {
    fn emit(&mut self, from: usize, to: usize) -> bool {
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.text.push_str(&self.text[from..to]);
        true
    }
}

impl TokenStream for NatterTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        while let Some((start, c)) = self.chars.next() {
            if is_cjk(c) {
                return self.emit(start, start + c.len_utf8());
            }
            if c.is_alphanumeric() {
                let mut end = start + c.len_utf8();
                while let Some(&(i, d)) = self.chars.peek() {
                    if d.is_alphanumeric() && !is_cjk(d) {
                        end = i + d.len_utf8();
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                return self.emit(start, end);
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The normalised tokens of a text.
pub fn tokens(text: &str) -> Vec<String> {
    let mut a = analyzer();
    let mut stream = a.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_and_accent_folded() {
        assert_eq!(
            tokens("Café CRÈME, order #1234!"),
            vec!["cafe", "creme", "order", "1234"]
        );
        assert_eq!(tokens("ann@example.com"), vec!["ann", "example", "com"]);
    }

    #[test]
    fn cjk_characters_are_tokens_of_their_own() {
        assert_eq!(tokens("配送が遅い"), vec!["配", "送", "が", "遅", "い"]);
        assert_eq!(tokens("abc配送def"), vec!["abc", "配", "送", "def"]);
    }
}
