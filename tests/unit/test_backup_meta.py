"""Backup metadata samples shaped exactly as the tools write them (see backup_meta's docstring)."""

import gzip
from pathlib import Path

import pytest
import zstandard

from binreplay.errors import BadInputError
from binreplay.source.backup_meta import BackupCoordinates, read_backup_coordinates

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "8a94f357-aab4-11df-86ab-c80aa9429562"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def coords(path, binlog_file, position, tool, mariadb_gtid=None, mysql_gtid=None) -> BackupCoordinates:
    return BackupCoordinates(Path(path), binlog_file, position, mariadb_gtid, mysql_gtid, tool)


# ---------------------------------------------------------------- xtrabackup / mariabackup


def test_xtrabackup_without_gtid(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", "mysql-bin.000003\t1234\n")
    assert read_backup_coordinates(f) == coords(f, "mysql-bin.000003", 1234, "xtrabackup")


def test_xtrabackup_with_multiline_gtid_set(tmp_path):
    # gtid_executed has a newline after each comma, and XtraBackup writes it as is.
    f = write(tmp_path / "xtrabackup_binlog_info", f"binlog.000017\t197\t{U2.upper()}:1-10,\n{U1}:1-5:7\n")
    assert read_backup_coordinates(f) == coords(
        f, "binlog.000017", 197, "xtrabackup", mysql_gtid=f"{U1}:1-5:7,{U2}:1-10"
    )


def test_xtrabackup_with_empty_gtid(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", "mysql-bin.000003\t1234\t\n")
    assert read_backup_coordinates(f) == coords(f, "mysql-bin.000003", 1234, "xtrabackup")


def test_xtrabackup_gtid_only_when_binlog_is_off(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", f"\t0\t{U1}:1-42\n")
    assert read_backup_coordinates(f) == coords(f, None, None, "xtrabackup", mysql_gtid=f"{U1}:1-42")


def test_mariabackup_binlog_info(tmp_path):
    f = write(tmp_path / "mariadb_backup_binlog_info", "mariadb-bin.000001\t329\t0-1-2\n")
    assert read_backup_coordinates(f) == coords(f, "mariadb-bin.000001", 329, "mariabackup", mariadb_gtid="0-1-2")


def test_old_mariabackup_writes_xtrabackup_binlog_info_with_a_gtid_list(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", "mariadb-bin.000096\t568\t0-1-2,1-2-5\n")
    assert read_backup_coordinates(f) == coords(
        f, "mariadb-bin.000096", 568, "mariabackup", mariadb_gtid="0-1-2,1-2-5"
    )


def test_mariabackup_recognised_by_its_info_file(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", "mariadb-bin.000002\t4521\t\n")
    write(tmp_path / "xtrabackup_info", "uuid = 1f9b\nname = \ntool_name = mariabackup\ntool_command = --backup\n")
    assert read_backup_coordinates(f).tool == "mariabackup"


def test_directory_path(tmp_path):
    write(tmp_path / "xtrabackup_checkpoints", "backup_type = full-backuped\nfrom_lsn = 0\n")
    write(tmp_path / "xtrabackup_binlog_info", "mysql-bin.000003\t1234\n")
    write(tmp_path / "xtrabackup_info", "tool_name = xtrabackup\n")
    assert read_backup_coordinates(tmp_path) == coords(
        tmp_path / "xtrabackup_binlog_info", "mysql-bin.000003", 1234, "xtrabackup"
    )


def test_directory_prefers_mariadb_backup_binlog_info(tmp_path):
    write(tmp_path / "xtrabackup_binlog_info", "mariadb-bin.000001\t100\t0-1-1\n")
    write(tmp_path / "mariadb_backup_binlog_info", "mariadb-bin.000001\t329\t0-1-2\n")
    assert read_backup_coordinates(tmp_path).position == 329


def test_compressed_backup_directory_asks_to_decompress(tmp_path):
    (tmp_path / "xtrabackup_binlog_info.zst").write_bytes(zstandard.compress(b"mysql-bin.000003\t1234\n"))
    with pytest.raises(BadInputError, match="decompress"):
        read_backup_coordinates(tmp_path)


def test_empty_binlog_info(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", "")
    with pytest.raises(BadInputError, match="empty"):
        read_backup_coordinates(f)


def test_bad_gtid_in_binlog_info_names_the_file(tmp_path):
    f = write(tmp_path / "xtrabackup_binlog_info", f"mysql-bin.000003\t1234\t{U1}:1-x\n")
    with pytest.raises(BadInputError, match="xtrabackup_binlog_info.*'1-x'"):
        read_backup_coordinates(f)


def test_binlog_info_under_another_name_is_recognised(tmp_path):
    f = write(tmp_path / "pos.txt", "mysql-bin.000009 4\n")
    assert read_backup_coordinates(f) == coords(f, "mysql-bin.000009", 4, "xtrabackup")


# ---------------------------------------------------------------- mysqldump

MYSQL_HEADER = """-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: localhost    Database: 
-- ------------------------------------------------------
-- Server version	8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN= 0;
"""

MYSQL_BODY = """
--
-- Current Database: `shop`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE `shop`;

DROP TABLE IF EXISTS `notes`;
CREATE TABLE `notes` (
  `id` int NOT NULL,
  `body` text,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

LOCK TABLES `notes` WRITE;
INSERT INTO `notes` VALUES (1,'-- CHANGE MASTER TO MASTER_LOG_FILE=\\'evil.000001\\', MASTER_LOG_POS=4;');
UNLOCK TABLES;
SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;

-- Dump completed on 2024-03-01 10:00:00
"""


def test_mysqldump_8_source_data_2_with_multiline_gtid_purged(tmp_path):
    f = write(tmp_path / "all.sql", MYSQL_HEADER + f"""
--
-- GTID state at the beginning of the backup 
--

SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{U1}:1-5,
{U2}:1-10';

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=1234;
""" + MYSQL_BODY)
    assert read_backup_coordinates(f) == coords(
        f, "binlog.000003", 1234, "mysqldump", mysql_gtid=f"{U1}:1-5,{U2}:1-10"
    )


def test_mysqldump_57_master_data_1_gzip(tmp_path):
    text = MYSQL_HEADER.replace("8.0.36", "5.7.44") + f"""
--
-- GTID state at the beginning of the backup 
--

SET @@GLOBAL.GTID_PURGED='{U1}:1-766741';

--
-- Position to start replication or point-in-time recovery from
--

CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000233', MASTER_LOG_POS=314582450;
""" + MYSQL_BODY
    f = tmp_path / "all.sql.gz"
    f.write_bytes(gzip.compress(text.encode()))
    assert read_backup_coordinates(f) == coords(
        f, "mysql-bin.000233", 314582450, "mysqldump", mysql_gtid=f"{U1}:1-766741"
    )


def test_mysqldump_zstd_and_source_host_port(tmp_path):
    text = MYSQL_HEADER + """
--
-- Position to start replication or point-in-time recovery from
--

CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.0.0.5', SOURCE_PORT=3306, SOURCE_LOG_FILE='binlog.000042', SOURCE_LOG_POS=157;
""" + MYSQL_BODY
    f = tmp_path / "dump.sql.zst"
    f.write_bytes(zstandard.compress(text.encode()))
    assert read_backup_coordinates(f) == coords(f, "binlog.000042", 157, "mysqldump")


def test_mysqldump_commented_gtid_purged(tmp_path):
    f = write(tmp_path / "d.sql", MYSQL_HEADER + f"""
--
-- GTID state at the beginning of the backup 
--

/* SET @@GLOBAL.GTID_PURGED='+{U1}:1-9';*/

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=3204;
""" + MYSQL_BODY)
    assert read_backup_coordinates(f) == coords(f, "mysql-bin.000001", 3204, "mysqldump", mysql_gtid=f"{U1}:1-9")


def test_mysqldump_gtid_only(tmp_path):
    f = write(tmp_path / "d.sql", MYSQL_HEADER + f"\nSET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '{U1}:1-7795';\n"
              + MYSQL_BODY)
    assert read_backup_coordinates(f) == coords(f, None, None, "mysqldump", mysql_gtid=f"{U1}:1-7795")


def test_mysqldump_empty_gtid_purged_and_no_position_is_not_enough(tmp_path):
    f = write(tmp_path / "d.sql", MYSQL_HEADER + "\nSET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '';\n" + MYSQL_BODY)
    with pytest.raises(BadInputError) as exc:
        read_backup_coordinates(f)
    assert str(exc.value) == (
        f"{f}: no binlog coordinates found (expected xtrabackup_binlog_info,"
        " a mysqldump with --master-data/--source-data, or mydumper metadata)"
    )


def test_mysqldump_without_master_data(tmp_path):
    f = write(tmp_path / "d.sql", MYSQL_HEADER + MYSQL_BODY)
    with pytest.raises(BadInputError, match="no binlog coordinates found"):
        read_backup_coordinates(f)


def test_statements_inside_the_data_are_not_read(tmp_path):
    # The only CHANGE MASTER text is inside an INSERT, after the dump's body began.
    f = write(tmp_path / "d.sql", MYSQL_HEADER + MYSQL_BODY)
    with pytest.raises(BadInputError):
        read_backup_coordinates(f)


def test_mysqldump_with_master_data_and_dump_slave_is_ambiguous(tmp_path):
    f = write(tmp_path / "d.sql", MYSQL_HEADER + """
--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000010', MASTER_LOG_POS=900;

--
-- Position to start replication or point-in-time recovery from (the master of this slave)
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000777', MASTER_LOG_POS=120;
""" + MYSQL_BODY)
    with pytest.raises(BadInputError, match="several binlog positions"):
        read_backup_coordinates(f)


MARIADB_HEADER = """/*M!999999\\- enable the sandbox mode */ 
-- MariaDB dump 10.19-11.4.3-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: 
-- ------------------------------------------------------
-- Server version	11.4.3-MariaDB-log

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;
"""

MARIADB_BODY = """
--
-- Current Database: `shop`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */;

USE `shop`;
DROP TABLE IF EXISTS `t`;
CREATE TABLE `t` (
  `id` int(11) NOT NULL,
  `pad` varchar(200) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_uca1400_ai_ci;

LOCK TABLES `t` WRITE;
/*!40000 ALTER TABLE `t` DISABLE KEYS */;
{rows}
/*!40000 ALTER TABLE `t` ENABLE KEYS */;
UNLOCK TABLES;
"""

MARIADB_FOOTER = """/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*M!100616 SET NOTE_VERBOSITY=@OLD_NOTE_VERBOSITY */;

-- Dump completed on 2024-11-02 21:06:41
"""


def mariadb_rows(n: int) -> str:
    return "\n".join(f"INSERT INTO `t` VALUES ({i},'{'x' * 150}');" for i in range(n))


def mariadb_dump_master_data_2(rows: int) -> str:
    """mariadb-dump --master-data=2 (current releases): the gtid state comes at the end, commented."""
    return MARIADB_HEADER + """
--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
-- Use this when creating a replica of the primary server where the backup was made.
-- The new server will be connecting to the primary server where the backup was taken.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=2730;

-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed as comments later in the file.
""" + MARIADB_BODY.format(rows=mariadb_rows(rows)) + """
-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows

-- Preferably use GTID to start replication from GTID position:

-- SET GLOBAL gtid_slave_pos='0-1-13,1-2-7';
""" + MARIADB_FOOTER


def test_mariadb_dump_with_deferred_gtid_at_the_end(tmp_path):
    f = write(tmp_path / "maria.sql", mariadb_dump_master_data_2(rows=20_000))  # ~3.5 MB: the tail is needed
    assert read_backup_coordinates(f) == coords(
        f, "mysql-bin.000001", 2730, "mariadb-dump", mariadb_gtid="0-1-13,1-2-7"
    )


def test_mariadb_dump_gzip_with_deferred_gtid(tmp_path):
    f = tmp_path / "maria.sql.gz"
    f.write_bytes(gzip.compress(mariadb_dump_master_data_2(rows=20_000).encode()))
    assert read_backup_coordinates(f) == coords(
        f, "mysql-bin.000001", 2730, "mariadb-dump", mariadb_gtid="0-1-13,1-2-7"
    )


def test_mariadb_dump_gtid_master_data_1(tmp_path):
    f = write(tmp_path / "maria.sql", MARIADB_HEADER + """
CHANGE MASTER TO MASTER_USE_GTID=slave_pos;

-- A corresponding to the above master-data CHANGE-MASTER settings to the slave gtid state is printed later in the file.

--
-- Alternately, following is the position of the binary logging from SHOW MASTER STATUS at point of backup.
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000004', MASTER_LOG_POS=842;
""" + MARIADB_BODY.format(rows=mariadb_rows(3)) + """
-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows

-- Preferably use GTID to start replication from GTID position:

SET GLOBAL gtid_slave_pos='0-1-16';
""" + MARIADB_FOOTER)
    assert read_backup_coordinates(f) == coords(f, "mariadb-bin.000004", 842, "mariadb-dump", mariadb_gtid="0-1-16")


def test_old_mariadb_dump_with_gtid_in_the_head(tmp_path):
    f = write(tmp_path / "maria.sql", """-- MySQL dump 10.16  Distrib 10.1.48-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: shop
-- ------------------------------------------------------
-- Server version	10.1.48-MariaDB-0+deb9u2

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;

--
-- Position to start replication or point-in-time recovery from
--

-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin.000002', MASTER_LOG_POS=642;

--
-- GTID to start replication from
--

-- SET GLOBAL gtid_slave_pos='0-1-2';
""" + MARIADB_BODY.format(rows=mariadb_rows(2)))
    assert read_backup_coordinates(f) == coords(f, "mariadb-bin.000002", 642, "mariadb-dump", mariadb_gtid="0-1-2")


def test_mariadb_dump_without_gtid(tmp_path):
    f = write(tmp_path / "maria.sql", MARIADB_HEADER + """
-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=329;
""" + MARIADB_BODY.format(rows=mariadb_rows(2)) + MARIADB_FOOTER)
    assert read_backup_coordinates(f) == coords(f, "mysql-bin.000001", 329, "mariadb-dump")


# ---------------------------------------------------------------- mydumper


def test_mydumper_old_text_format(tmp_path):
    f = write(tmp_path / "metadata", f"""Started dump at: 2021-03-14 10:00:00
SHOW MASTER STATUS:
\tLog: mysql-bin.000003
\tPos: 1234
\tGTID:{U1}:1-5,
{U2}:1-10

SHOW SLAVE STATUS:
\tHost: 10.0.0.1
\tLog: mysql-bin.000999
\tPos: 4
\tGTID:{U2}:1-10

Finished dump at: 2021-03-14 10:00:05
""")
    assert read_backup_coordinates(f) == coords(
        f, "mysql-bin.000003", 1234, "mydumper", mysql_gtid=f"{U1}:1-5,{U2}:1-10"
    )


def test_mydumper_old_text_format_without_gtid(tmp_path):
    f = write(tmp_path / "metadata", """Started dump at: 2019-01-02 03:04:05
SHOW MASTER STATUS:
\tLog: mariadb-bin.000012
\tPos: 77
\tGTID:(null)

Finished dump at: 2019-01-02 03:04:09
""")
    assert read_backup_coordinates(f) == coords(f, "mariadb-bin.000012", 77, "mydumper")


def test_mydumper_014_master_section(tmp_path):
    f = write(tmp_path / "metadata", f"""# Started dump at: 2022-11-04 12:00:01
[config]
quote_character = BACKTICK

[master]
# Channel_Name = '' # It can be use to setup replication FOR CHANNEL
File = mysql-bin.000005
Position = 4521
Executed_Gtid_Set = {U1}:1-30,
{U2}:1-2

[`shop`.`notes`]
real_table_name=notes
rows = 1

# Finished dump at: 2022-11-04 12:00:09
""")
    assert read_backup_coordinates(f) == coords(
        f, "mysql-bin.000005", 4521, "mydumper", mysql_gtid=f"{U1}:1-30,{U2}:1-2"
    )


def test_mydumper_017_source_section_plain_keys(tmp_path):
    f = write(tmp_path / "metadata", """# Started dump at: 2023-06-01 08:00:00
[config]
quote_character = BACKTICK

[myloader_session_variables]
SQL_MODE='NO_AUTO_VALUE_ON_ZERO,' /*!40101

[source]
# Channel_Name = '' # It can be use to setup replication FOR CHANNEL
File = mariadb-bin.000021
Position = 385
Executed_Gtid_Set = 0-1-58,3-3-4

# Finished dump at: 2023-06-01 08:00:07
""")
    assert read_backup_coordinates(f) == coords(
        f, "mariadb-bin.000021", 385, "mydumper", mariadb_gtid="0-1-58,3-3-4"
    )


def test_mydumper_source_data_quoted_keys(tmp_path):
    f = write(tmp_path / "metadata", f"""[source]
# Channel_Name = '' # It can be use to setup replication FOR CHANNEL
#SOURCE_HOST = "db1"
#SOURCE_PORT = 
#SOURCE_USER = ""
#SOURCE_PASSWORD = ""
#SOURCE_SSL = {{0|1}}
executed_gtid_set = "{U1}:1-12"
SOURCE_LOG_FILE = "binlog.000002"
SOURCE_LOG_POS = 157
#SOURCE_AUTO_POSITION = {{0|1}}
myloader_exec_reset_replica = 0
myloader_exec_change_source = 0
myloader_exec_start_replica = 0
""")
    assert read_backup_coordinates(f) == coords(f, "binlog.000002", 157, "mydumper", mysql_gtid=f"{U1}:1-12")


def test_mydumper_1_0_commented_source_and_a_replication_section(tmp_path):
    f = write(tmp_path / "metadata", """# Started dump at: 2025-02-01 00:00:00
[config]
quote-character = BACKTICK

[myloader_session_variables]
SQL_MODE='NO_AUTO_VALUE_ON_ZERO,ONLY_FULL_GROUP_BY' /*!40101

[source]
# Channel_Name = '' # It can be use to setup replication FOR CHANNEL
# executed_gtid_set = "0-1-1043"
# SOURCE_LOG_FILE = "mariadb-bin.000007"
# SOURCE_LOG_POS = 1990

[replication]
Gtid_Slave_Pos = "0-9-500"
SOURCE_LOG_FILE = "primary-bin.000300"
SOURCE_LOG_POS = 12345
#SOURCE_AUTO_POSITION = {0|1}
# Master_Host = '10.0.0.9'
#SOURCE_SSL = {0|1}
myloader_exec_reset_replica = 0

[config]
max-statement-size = 1000000
# Finished dump at: 2025-02-01 00:00:03
""")
    assert read_backup_coordinates(f) == coords(f, "mariadb-bin.000007", 1990, "mydumper", mariadb_gtid="0-1-1043")


def test_mydumper_directory(tmp_path):
    write(tmp_path / "shop-schema-create.sql", "CREATE DATABASE `shop`;\n")
    write(tmp_path / "metadata", "[source]\nFile = mysql-bin.000001\nPosition = 4\nExecuted_Gtid_Set = \n")
    assert read_backup_coordinates(tmp_path) == coords(tmp_path / "metadata", "mysql-bin.000001", 4, "mydumper")


def test_mydumper_without_source_section(tmp_path):
    f = write(tmp_path / "metadata", "# Started dump at: 2025-02-01\n[config]\nquote-character = BACKTICK\n")
    with pytest.raises(BadInputError, match="no binlog coordinates found"):
        read_backup_coordinates(f)


def test_mydumper_metadata_under_another_name(tmp_path):
    f = write(tmp_path / "metadata.copy", "[master]\nFile = mysql-bin.000001\nPosition = 4\n")
    assert read_backup_coordinates(f).tool == "mydumper"


def test_mydumper_position_without_file(tmp_path):
    f = write(tmp_path / "metadata", "[source]\nPosition = 4\n")
    with pytest.raises(BadInputError, match="together"):
        read_backup_coordinates(f)


# ---------------------------------------------------------------- paths


def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "nope" / "xtrabackup_binlog_info"
    with pytest.raises(BadInputError, match=str(missing)):
        read_backup_coordinates(missing)


def test_directory_without_metadata(tmp_path):
    write(tmp_path / "ibdata1", "")
    with pytest.raises(BadInputError) as exc:
        read_backup_coordinates(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path}: no binlog coordinates found")


def test_unrelated_file(tmp_path):
    f = write(tmp_path / "notes.txt", "hello\nworld\n")
    with pytest.raises(BadInputError, match="no binlog coordinates found"):
        read_backup_coordinates(f)
