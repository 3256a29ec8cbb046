package control

import (
	"context"
	"time"
)

// UserInfo is one row of `hearth user list`.
type UserInfo struct {
	UserID      string `json:"user_id"`
	Admin       bool   `json:"admin"`
	Deactivated bool   `json:"deactivated"`
	DisplayName string `json:"displayname,omitempty"`
	CreatedMS   int64  `json:"created_ms"`
}

// Admin is what the command line can do to the homeserver.
type Admin interface {
	AddUser(ctx context.Context, name, password string, admin bool) (userID string, err error)
	ListUsers(ctx context.Context) ([]UserInfo, error)
	SetPassword(ctx context.Context, name, password string) error
	Deactivate(ctx context.Context, name string) error
	// CreateToken makes a registration token; usesAllowed 0 means unlimited, expiry 0 means never.
	CreateToken(ctx context.Context, usesAllowed int, expiry time.Duration) (string, error)
}
