package search

import (
	"strings"
	"unicode"
)

// maxTokenLen bounds one token in bytes; longer words are cut (a URL or a hash is not a word
// anyone searches for in full).
const maxTokenLen = 48

// Tokens splits s into lower-cased Unicode words, in order, duplicates kept.
func Tokens(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
		w = strings.ToLower(w)
		if len(w) > maxTokenLen {
			cut := maxTokenLen
			for cut > 0 && !isRuneStart(w[cut]) {
				cut--
			}
			w = w[:cut]
		}
		out = append(out, w)
	}
	return out
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// counts returns each distinct token with its number of occurrences (capped at 255).
func counts(s string) map[string]byte {
	m := map[string]byte{}
	for _, t := range Tokens(s) {
		if m[t] < 255 {
			m[t]++
		}
	}
	return m
}
