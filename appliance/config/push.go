package config

// Push configures server-side push rule evaluation (matrix/push).
type Push struct {
	// LegacyMentionRules serves the body-matching mention rules that spec v1.17 removed
	// (.m.rule.contains_user_name, .contains_display_name, .roomnotif): a message without
	// m.mentions that contains a user's name or "@room" then highlights, as on Synapse. Off by
	// default (spec v1.19); worth turning on when bridges or older clients that do not send
	// m.mentions are in use.
	LegacyMentionRules bool `yaml:"legacy_mention_rules"`
}
