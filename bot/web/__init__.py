"""The aiohttp side: routes, middleware, typed application keys."""
