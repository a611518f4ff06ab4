package main

import (
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/swarm"
)

// taskDeps is what a domain needs to build its controller task.
type taskDeps struct {
	Engine *swarm.Client
	Self   swarm.Self
	Ledger *swarm.Ledger
}

// taskBuilders are the domains' controller tasks; each domain's file registers its own in init.
var taskBuilders []func(a *app, d taskDeps) (operator.Task, error)

func registerTask(f func(a *app, d taskDeps) (operator.Task, error)) {
	taskBuilders = append(taskBuilders, f)
}
