"""Getting a workspace ready for real tenants: what the mappings need (:mod:`.requirements`),
the integration solution (:mod:`.crm_solution`, :mod:`.definitions`), what the services have
(:mod:`.facts`), the checks (:mod:`.doctor`), creating what Dataverse lacks
(:mod:`.crm_setup`), one workspace being checked (:mod:`.checkup`) and the commands
(:mod:`.cli`: ``nav-crm-ops doctor``, ``nav-crm-ops setup crm``)."""
