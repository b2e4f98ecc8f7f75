-- Run once by the MariaDB image when its data volume is first created (docker-compose.yml).
-- The same grants as scripts/services.sh: the tests and the projection bench create and drop
-- their own databases stockade_<something> (the backslash keeps `_` literal).
GRANT ALL PRIVILEGES ON `stockade\_%`.* TO 'stockade'@'%';
FLUSH PRIVILEGES;
