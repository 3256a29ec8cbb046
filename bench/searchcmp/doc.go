// Package main compares the memory, disk and time cost of Hearth's Badger search index
// (matrix/search) with bleve v2 (scorch, on disk) on the same generated 100,000-message
// corpus. It is its own Go module so that bleve never reaches the appliance binary.
package main
