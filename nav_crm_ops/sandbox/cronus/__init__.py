"""Static data of the CRONUS International Ltd. demo company, as plain Python tuples.

``business_central`` holds the back-office side (company, reference data, customers, contacts,
items, resources, prices, documents), ``dataverse`` the Dynamics 365 Sales side. The tuples carry
natural keys only; :mod:`nav_crm_ops.sandbox.seed` turns them into rows with deterministic GUIDs
and timestamps. Keeping the data apart from the loader lets the ``scale:N`` generator reuse the
reference data and lets tests name the expected records without reading the loader.
"""
