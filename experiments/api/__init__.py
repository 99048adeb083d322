"""REST endpoints of the experiments app; shared API machinery is in marketing.api."""
