package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// readNewPassword gets a password: one line from stdin with --password-stdin or when stdin is
// not a terminal (a pipe or a script), otherwise typed twice without echo to catch typos.
func readNewPassword(d *deps, fromStdin bool) (string, error) {
	if fromStdin || !d.term.IsTerminal() {
		return readPasswordLine(d.stdin)
	}
	first, err := prompt(d, "New password: ")
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", errors.New("empty password")
	}
	second, err := prompt(d, "Repeat password: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("passwords do not match")
	}
	return first, nil
}

func prompt(d *deps, text string) (string, error) {
	fmt.Fprint(d.stderr, text)
	p, err := d.term.ReadPassword()
	fmt.Fprintln(d.stderr) // the user's Enter was not echoed either
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(p), nil
}

// readPasswordLine reads up to the first newline. Only the line ending is stripped: spaces
// may be part of the password.
func readPasswordLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on standard input")
		}
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("empty password")
	}
	return line, nil
}
