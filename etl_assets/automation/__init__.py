"""What runs the assets by itself: jobs, schedules, sensors and the alert sensors."""
