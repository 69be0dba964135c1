package gql

import (
	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/materialize"
)

// Resolver is the root of the API's resolvers: it serves what an Engine holds
// (the definitions, the catalog, the engine's queue).
type Resolver struct {
	Engine *materialize.Engine
	Logger hclog.Logger
}

func (r *Resolver) logger() hclog.Logger {
	if r.Logger == nil {
		return hclog.NewNullLogger()
	}
	return r.Logger
}
