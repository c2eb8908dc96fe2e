package admin

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// loadTokens reads a token file: one token per line, blank lines and lines
// starting with # ignored.
func loadTokens(path string) func() ([]string, error) {
	return func() ([]string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("admin token file: %w", err)
		}
		tokens := parseTokens(data)
		if len(tokens) == 0 {
			return nil, fmt.Errorf("admin token file %s holds no token", path)
		}
		return tokens, nil
	}
}

func parseTokens(data []byte) []string {
	var tokens []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	return tokens
}

// ReadTokenFile returns the token a client sends: the first one in the file.
func ReadTokenFile(path string) (string, error) {
	tokens, err := loadTokens(path)()
	if err != nil {
		return "", err
	}
	return tokens[0], nil
}
