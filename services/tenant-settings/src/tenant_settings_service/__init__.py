"""tenant_settings_service"""
