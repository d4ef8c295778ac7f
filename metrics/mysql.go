package metrics

import "github.com/prometheus/client_golang/prometheus"

// MySQL holds the binlog metrics of MySQL/MariaDB pipelines, labelled pipeline. They are
// set by the source's monitor (source/mysql), which reads the server's binlog list every few
// seconds, also while the pipeline is failed: retention matters most then.
type MySQL struct {
	// LagBytes is how many binlog bytes the server has written beyond what cdcd has read.
	LagBytes *prometheus.GaugeVec
	// LagSeconds is how far behind the server's clock the last binlog event cdcd read is, while
	// it is behind (0 when it has read everything).
	LagSeconds *prometheus.GaugeVec
	// RetainedBytes and Files describe the binlogs the server still holds.
	RetainedBytes *prometheus.GaugeVec
	Files         *prometheus.GaugeVec
	// ExpireSeconds is the server's binlog retention (binlog_expire_logs_seconds, or
	// expire_logs_days); 0 when binlogs are never expired automatically.
	ExpireSeconds *prometheus.GaugeVec
	// PurgeDistanceBytes and PurgeDistanceFiles measure how far the committed position is
	// from being purged: the binlog bytes and files the server holds before it. Files 0 with
	// newer files present means the next purge removes the committed position's binlog.
	PurgeDistanceBytes *prometheus.GaugeVec
	PurgeDistanceFiles *prometheus.GaugeVec
	// CommittedPurged is 1 when the committed position's binlog is gone.
	CommittedPurged *prometheus.GaugeVec
}

// NewMySQL registers the MySQL binlog metrics on reg.
func NewMySQL(reg prometheus.Registerer) *MySQL {
	f := factory{reg}
	return &MySQL{
		LagBytes: f.gauge("cdcd_mysql_binlog_lag_bytes",
			"Binlog bytes the server has written beyond the position cdcd has read.", "pipeline"),
		LagSeconds: f.gauge("cdcd_mysql_binlog_lag_seconds",
			"Seconds between the server's clock and the last binlog event cdcd read, while cdcd is behind; 0 once it has read everything.", "pipeline"),
		RetainedBytes: f.gauge("cdcd_mysql_binlog_retained_bytes",
			"Total size of the binlogs the server holds (SHOW BINARY LOGS).", "pipeline"),
		Files: f.gauge("cdcd_mysql_binlog_files",
			"Number of binlog files the server holds.", "pipeline"),
		ExpireSeconds: f.gauge("cdcd_mysql_binlog_expire_seconds",
			"The server's binlog retention (binlog_expire_logs_seconds or expire_logs_days); 0 = never expired automatically.", "pipeline"),
		PurgeDistanceBytes: f.gauge("cdcd_mysql_binlog_purge_distance_bytes",
			"Binlog bytes the server holds before the pipeline's committed position: what it can purge before the committed position is lost.", "pipeline"),
		PurgeDistanceFiles: f.gauge("cdcd_mysql_binlog_purge_distance_files",
			"Binlog files the server holds before the one of the pipeline's committed position; 0 while newer files exist means the next purge loses it.", "pipeline"),
		CommittedPurged: f.gauge("cdcd_mysql_committed_position_purged",
			"1 when the binlog of the pipeline's committed position is no longer on the server (re-snapshot needed), 0 otherwise.", "pipeline"),
	}
}
