package gql

//go:generate go tool gqlgen generate --config gqlgen.yml
