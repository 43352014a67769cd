SELECT 'héhé ünïcødé';
  SELECT 'ééé', nosuchcolumn FROM t;
	SELECT '日本語'; SELECT 1;
