module seed.loom.farm/shoot-agent

go 1.22
