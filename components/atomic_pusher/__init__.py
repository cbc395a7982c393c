"""A Pusher whose new model versions appear in one atomic step."""
