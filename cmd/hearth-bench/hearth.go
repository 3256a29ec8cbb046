package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildHearth builds the release binary the way `make build` does (static, stripped) into
// cacheDir and returns its path. With rev, it builds that commit (exported with git archive
// into a temporary folder, so the work tree and other people's edits in it do not matter);
// without, the work tree as it is.
func buildHearth(ctx context.Context, repo, cacheDir, rev string) (string, error) {
	bin := filepath.Join(cacheDir, "hearth", "hearth")
	version := "bench-" + gitCommit(repo, true)
	if rev != "" {
		src, err := os.MkdirTemp("", "hearth-src-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(src)
		archive := exec.CommandContext(ctx, "git", "-C", repo, "archive", "--format=tar", rev)
		untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
		pipe, err := archive.StdoutPipe()
		if err != nil {
			return "", err
		}
		untar.Stdin = pipe
		if err := untar.Start(); err != nil {
			return "", err
		}
		if err := archive.Run(); err != nil {
			return "", fmt.Errorf("git archive %s: %w", rev, err)
		}
		if err := untar.Wait(); err != nil {
			return "", fmt.Errorf("untar %s: %w", rev, err)
		}
		repo, version = src, "bench-"+rev
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// goolm: the device bridge links mautrix crypto, pure Go with this tag (no libolm).
	env := envWithout([]string{"CGO_ENABLED=", "GOFLAGS="}, "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false -tags=goolm")
	err := runCmd(ctx, repo, env, goTool(), "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/hearth-home/hearth/appliance.version="+version,
		"-o", bin, "./cmd/hearth")
	return bin, err
}

// hearthTarget serves Hearth from bin. memLimit, when set, becomes GOMEMLIMIT.
func hearthTarget(bin, memLimit string) *target {
	name := "Hearth"
	if memLimit != "" {
		name = "Hearth (GOMEMLIMIT=" + memLimit + ")"
	}
	t := &target{
		Name:    name,
		Binary:  bin,
		Version: "bench build",
		prepare: func(string, string) error { return nil },
		command: func(dataDir, addr, secret string) *exec.Cmd {
			cmd := exec.Command(bin, "serve", "--data", dataDir, "--listen", addr, "--server-name", "localhost")
			env := envWithout([]string{"HEARTH_", "GOMEMLIMIT=", "GOGC="},
				"HEARTH_REGISTRATION_SHARED_SECRET="+secret,
				"HEARTH_LIMITS_RATE_LIMIT=false",
				"HEARTH_LOG_LEVEL=warn",
			)
			if memLimit != "" {
				env = append(env, "GOMEMLIMIT="+memLimit)
			}
			cmd.Env = env
			return cmd
		},
		storeDir: func(dataDir string) string { return dataDir },
	}
	if st, err := os.Stat(bin); err == nil {
		t.BinarySize = st.Size()
	}
	return t
}

// revCommit is `git rev-parse REV`.
func revCommit(repo, rev string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", rev+"^{commit}").Output()
	if err != nil {
		return rev
	}
	return strings.TrimSpace(string(out))
}

// gitCommit is `git rev-parse HEAD` of the repository (short when asked), with "+dirty" when
// the work tree has changes.
func gitCommit(repo string, short bool) string {
	args := []string{"rev-parse", "HEAD"}
	if short {
		args = []string{"rev-parse", "--short", "HEAD"}
	}
	out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}

// goTool is the go command to build with: the one on PATH (GOTOOLCHAIN from the environment
// selects the version, as in the Makefile).
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// findRepo walks up from the working directory to the directory holding Hearth's go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/hearth-home/hearth") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run hearth-bench inside the Hearth repository")
		}
		dir = parent
	}
}
