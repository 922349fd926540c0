"""The landing zone (a folder or S3), loading its files into the raw tables, and the sensor's load plan."""
