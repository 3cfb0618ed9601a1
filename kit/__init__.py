"""The app teams' kit: typed clients generated from openapi.json (`make clients`), the browsable reference served at
/docs, and a small page the local gateway serves at /_kit/ that signs an admin in and shows the dashboard."""
